"""Production adapters to systems outside Zhida: the treasury (国库集中支付: signed HTTP or ISO 20022 files), its
request signing, and the SMS providers; `factory` builds them from settings. Their stand-ins live in standins/."""
