"""`--push-to-hub REPO`: upload an export folder to the Hugging Face Hub (the only network use, and
only when asked)."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.known_errors import first_line

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def push_folder(folder: Path, repo_id: str) -> str:
    """Create `repo_id` (a model repo) if needed and upload `folder` to it; returns the repo's URL."""
    offline = [name for name in OFFLINE_VARIABLES if os.environ.get(name, "").lower() in {"1", "true", "yes"}]
    if offline:
        raise WorkbenchError(f"--push-to-hub {repo_id}: offline ({offline[0]}=1); unset it to upload, or upload {folder} later")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise WorkbenchError(f"--push-to-hub {repo_id!r}: expected a repo id of the form owner/name")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload from SFT Workbench")
    except Exception as error:  # network, authentication, permissions: one line, no traceback
        raise WorkbenchError(f"--push-to-hub {repo_id}: {first_line(error)}") from None
    return f"https://huggingface.co/{repo_id}"
