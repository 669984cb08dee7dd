"""allauth's account adapter: where a sign-up's user row and its consent choices are written
together. allauth saves the user in the adapter and calls the form's `signup()` hook only
afterwards, outside any transaction; here both happen in one, so a refused choice leaves no
account behind."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.internal.httpkit import is_headless_request
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

from accounts.signup import CONSENTS, ConsentSignup
from consent.errors import ConsentError
from vault.errors import ApplicationError


class AccountAdapter(DefaultAccountAdapter):
    def save_user(
        self, request: HttpRequest, user: AbstractBaseUser, form: BaseForm, commit: bool = True
    ) -> AbstractBaseUser:
        if not commit or not isinstance(form, ConsentSignup):
            return super().save_user(request, user, form, commit)
        try:
            with transaction.atomic():
                saved = super().save_user(request, user, form, commit=True)
                form.save_consents(request, saved)
        except ConsentError as error:
            # Only a race gets here (clean() checked the rest): a policy published between
            # the check and the write. Nothing was kept; the person sees why and can retry.
            form.add_error(CONSENTS, error.message)
            raise ImmediateHttpResponse(_form_error_response(request, form)) from None
        except ApplicationError:  # a profile value refused by the gate
            form.add_error(None, gettext("We could not store your date of birth or country; nothing was saved."))
            raise ImmediateHttpResponse(_form_error_response(request, form)) from None
        return saved


def _form_error_response(request: HttpRequest, form: Any) -> HttpResponse:
    """The form again with its errors: as the headless API's error envelope, or as the page."""
    if is_headless_request(request):
        from allauth.headless.internal.restkit.response import ErrorResponse

        return ErrorResponse(request, input=form)
    template = "socialaccount/signup.html" if hasattr(form, "sociallogin") else "account/signup.html"
    return render(request, template, {"form": form}, status=400)
