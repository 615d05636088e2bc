"""Which adapter users are served: the quality gate, immutable snapshots, promotion and rollback.

Other groups ask it only for what is served now:

    from selfinstruct.serving import served_adapter_dir
    served_adapter_dir(home / "serving")   # the served adapter's folder, or None before the first promotion
"""

from selfinstruct.serving.registry import served_adapter_dir

__all__ = ["served_adapter_dir"]
