"""The data-sharing platform stand-in (政务数据共享交换平台模拟): a real HTTP server on a port of its own (picked free
by the OS unless one is given) that serves generated records of the five archive datasets (market registrations,
tax, social security, qualifications, credit) by the protocol of docs/datashare-protocol.md: signed requests (app key
+ HMAC-SHA256), pages, incremental after a watermark.

Faults are set over signed HTTP (`PUT /admin/faults`): a page that answers too late (timeout), a page with fewer
records than it says (partial page), and schema drift (a field renamed or retyped in the records). Records are
added or changed with `POST /admin/records/{dataset}`; each change gets a later `updated_at`, so the next pull after
a watermark sees only it.

Modules: app (HTTP, signing, faults, the records), data (the generated records), server (the server thread and the
admin client tests and operators use).
"""

from standins.datashare.app import DataShareStandIn, Faults, create_app
from standins.datashare.data import generate
from standins.datashare.server import DataShareAdmin, DataShareServer, serve

__all__ = ["DataShareAdmin", "DataShareServer", "DataShareStandIn", "Faults", "create_app", "generate", "serve"]
