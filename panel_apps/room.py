"""A room's dashboard for ``panel serve panel_apps/room.py panel_apps/lobby.py``.

Open ``/room?room=...&code=...`` (or enter the code in the form). The lab behind it
is started by the first session on the server's loop; see
:func:`sensocto_lab.app.panel_context` for its settings (``SENSOCTO_LAB_DATA``,
``SENSOCTO_LAB_ROOM``, ``SENSOCTO_LAB_SIMULATE``, ``SENSOCTO_LAB_CONNECT``).
"""

import panel as pn

from sensocto_lab.app import panel_context
from sensocto_lab.ui.dashboard.pages import room_page

pn.extension(inline=True)


async def page() -> pn.viewable.Viewable:
    return room_page(await panel_context())


pn.panel(page).servable(title="sensocto_lab room")
