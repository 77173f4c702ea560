"""The lobby for ``panel serve panel_apps/room.py panel_apps/lobby.py``: enter a join code.

Sends the browser to ``/room`` of the same server; see ``room.py`` for settings.
"""

import panel as pn

from sensocto_lab.app import panel_context
from sensocto_lab.ui.dashboard.pages import lobby_page

pn.extension(inline=True)


async def page() -> pn.viewable.Viewable:
    return lobby_page(await panel_context())


pn.panel(page).servable(title="sensocto_lab")
