"""The pages people use: sign-up forms (with consent and social import), overview, profile,
consents, connected accounts, security, the privacy centre and who accessed my data. Pages are
thin: they call the apps' services and selectors and turn domain errors into form errors."""
