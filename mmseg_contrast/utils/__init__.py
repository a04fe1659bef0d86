from .download import (ChecksumError, DownloadError,  # noqa: F401
                       download_checkpoint, register_url_scheme)

register_url_scheme()  # checksummed, resumable http(s):// checkpoint loader
from . import offline_data  # noqa: F401,E402
from .mobilenetv2 import convert_deepsort_mobilenetv2  # noqa: F401,E402
from .offline_data import (cache_dir, prepare_aal_slices,  # noqa: F401,E402
                           prepare_all, prepare_mobilenetv2, prepare_voc_mini)
