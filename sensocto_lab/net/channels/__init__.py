"""The channels of the WebSocket endpoint: one handler object per joined topic kind.

:mod:`.sensor` (sensor and connector channels) and :mod:`.viewer` (room and lens
channels) build on :mod:`.base`; a socket makes the channel on a join and hands it the
pushes of its topic, and the channel replies and pushes through the socket
(:class:`~sensocto_lab.net.hosting.ChannelHost`).
"""
