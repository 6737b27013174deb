"""alignflow: an orchestrated RLHF pipeline with tracked artifacts."""

from alignflow import hub_kernels

hub_kernels.install()  # before anything imports bitsandbytes (peft does): no hub code at import time
