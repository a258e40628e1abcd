"""Operations on runs beside the pipeline: control (cancel, release, discard), replay, crash
recovery, auto-disable and retention."""
