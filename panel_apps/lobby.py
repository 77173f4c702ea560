"""The lobby for ``panel serve panel_apps/room.py panel_apps/lobby.py``: enter a join code.

Sends the browser to ``/room`` of the same server; see ``room.py`` for settings.
"""

import panel as pn

from sensocto_lab.widgets.panel_dashboard import lobby_page
from sensocto_lab.widgets.panel_server import shared_context

pn.extension(inline=True)


async def page() -> pn.viewable.Viewable:
    return lobby_page(await shared_context())


pn.panel(page).servable(title="sensocto_lab")
