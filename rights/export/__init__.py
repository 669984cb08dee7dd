"""The access and export bundle (GDPR Art. 15 and 20): `parts` gathers one person's data through
the gate, `formats` writes it as JSON, CSV and a README into one zip. The services that build,
store, hand out and expire bundles are in `rights.services.export`."""
