"""A person in the staff admin: their page (every value masked; viewing it is audited), the
audited reveal of chosen values through the access gate, the "find a person" search through the
blind indexes, and allauth's admin pages wrapped so no list, search or page shows an address,
a provider's id for the person, a token or a secret."""
