"""Model families; importing this package registers each in :data:`forecast.FORECASTERS`."""

from adaptcast.forecast.models import arnet, informer, lnn, lstm, mimo_vp, naive, xgb  # noqa: F401
