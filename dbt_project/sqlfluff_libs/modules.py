"""``modules.datetime`` and ``modules.re``, as dbt gives them to the models (see dbt.py)."""

import datetime  # noqa: F401
import re  # noqa: F401
