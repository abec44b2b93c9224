"""Model families; importing this package registers each in :data:`forecast.FORECASTERS`."""

from adaptcast.forecast.models import arnet, lnn, lstm, naive, xgb  # noqa: F401
from adaptcast.forecast.models import informer, mimo_vp  # noqa: F401
