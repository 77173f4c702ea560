# The public API, as mypy and editors see it; sensocto_lab/__init__.py loads each name
# lazily from this list (lazy_loader's stub pattern), so the two cannot disagree.
from . import errors as errors
from . import io as io
from . import lsl as lsl
from . import physio as physio
from . import sync as sync
from .app import LabApp as LabApp
from .app import LabOptions as LabOptions
from .clock import FakeClock as FakeClock
from .clock import SystemClock as SystemClock
from .engine.attention import AttentionConfig as AttentionConfig
from .engine.bus import Overflow as Overflow
from .engine.config import EngineConfig as EngineConfig
from .engine.contracts import EngineView as EngineView
from .engine.contracts import IngestSink as IngestSink
from .engine.engine import Engine as Engine
from .engine.experiment import ProtocolRun as ProtocolRun
from .engine.load import LoadConfig as LoadConfig
from .engine.novelty import NoveltyConfig as NoveltyConfig
from .engine.status import SensorState as SensorState
from .engine.status import SensorStatus as SensorStatus
from .engine.synchrony import LiveSynchrony as LiveSynchrony
from .events import Event as Event
from .model import KINDS as KINDS
from .model import AttentionLevel as AttentionLevel
from .model import AttributeInfo as AttributeInfo
from .model import BackpressureConfig as BackpressureConfig
from .model import Batch as Batch
from .model import LoadLevel as LoadLevel
from .model import SensorInfo as SensorInfo
from .net.config import ServerConfig as ServerConfig
from .net.sensor_client import SensorClient as SensorClient
from .net.server import IngestServer as IngestServer
from .net.server import serve as serve
from .net.viewer_client import ViewerClient as ViewerClient
from .rooms import RoomStore as RoomStore
from .sources.ble.capture import BleCapture as BleCapture
from .sources.ble.fake import FakeRadio as FakeRadio
from .sources.ble.scan import resolve_backend as resolve_backend
from .sources.ble.scan import scan as scan
from .sources.replay import replay_session as replay_session
from .sources.simulated import SimulatedGroup as SimulatedGroup
from .sources.simulator import GroupSimulator as GroupSimulator
from .sources.simulator import SimConfig as SimConfig
from .storage.config import StorageConfig as StorageConfig
from .storage.tiered import TieredStore as TieredStore
from .study import Study as Study
from .sync.online import OnlineConfig as OnlineConfig
from .ui.dashboard.server import serve_dashboards as serve_dashboards
from .ui.dashboard.server import serve_remote_dashboards as serve_remote_dashboards
from .ui.notebook.history import HistoryWidget as HistoryWidget
from .ui.notebook.marker_pad import MarkerPad as MarkerPad
from .ui.notebook.strip import StripWidget as StripWidget
from .ui.notebook.sync_widget import SyncWidget as SyncWidget

__version__: str
__all__: list[str]
