"""Template tags of the connected-accounts page (templates/socialaccount/connections.html)."""

from allauth.socialaccount.models import SocialAccount
from django import template

from accounts.selectors import SocialLinkOverview, social_link_overview

register = template.Library()


@register.simple_tag
def social_link(account: SocialAccount) -> SocialLinkOverview:
    """`{% social_link account as link %}`: the link's refresh, what it imported (labels), and
    when or why its data goes."""
    return social_link_overview(account=account)
