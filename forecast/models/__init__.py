"""Model families; importing this package registers each in :data:`forecast.FORECASTERS`."""

from forecast.models import naive  # noqa: F401
