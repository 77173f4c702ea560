"""A room's dashboard for ``panel serve panel_apps/room.py panel_apps/lobby.py``.

Open ``/room?room=...&code=...`` (or enter the code in the form). The engine behind
it is started by the first session on the server's loop; see
:func:`sensocto_lab.widgets.panel_server.shared_context` for its settings
(``SENSOCTO_LAB_DATA``, ``SENSOCTO_LAB_SIMULATE``, ``SENSOCTO_LAB_ROOM``).
"""

import panel as pn

from sensocto_lab.widgets.panel_dashboard import room_page
from sensocto_lab.widgets.panel_server import shared_context

pn.extension(inline=True)


async def page() -> pn.viewable.Viewable:
    return room_page(await shared_context())


pn.panel(page).servable(title="sensocto_lab room")
