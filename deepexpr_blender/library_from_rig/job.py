"""Building a library as a job: one thumbnail per step, so the modal operator shows real progress between
events and Esc cancels (the staging folder goes, the rig is given back, the previous library is kept)."""

from __future__ import annotations

import logging

import bpy

from .. import jobs
from ..core.library_format import LibraryError
from ..errors import UserError
from .build import iter_build_library

log = logging.getLogger(__name__)


class LibraryJob(jobs.Job):
    kind = "library"
    title = "Build library from rig"
    cancellable = True

    def __init__(self, scene, obj, found: list[dict], out: str, overwrite: bool):
        super().__init__(scene, f"Building the library of {obj.name}: starting...")
        self.rig_name, self.out, self.count = obj.name, out, len(found)
        self.steps = iter_build_library(out, found, rig=obj, name=obj.name, overwrite=overwrite)
        self.path: str | None = None

    def step(self) -> None:
        """Render the next thumbnail (or finish). Errors end the job; nothing half-built stays."""
        if self.done:
            return
        try:
            done, total = next(self.steps)
        except StopIteration as stop:
            return self._built(stop.value)
        except (UserError, LibraryError, OSError) as err:
            return self.fail(f"{self.title} failed. {err}")
        except Exception as exc:  # our bug: stop, say so
            log.exception("DeepExpr: building the library failed")
            return self.fail(f"{self.title} failed: {type(exc).__name__}: {exc}. See the system console.")
        self.progress(done, max(total, 1), f"Building the library of {self.rig_name}: pose {done} of {total}")

    def run(self) -> str:
        """All steps at once (no event loop: scripts, tests); user errors propagate."""
        while not self.done:
            try:
                done, total = next(self.steps)
            except StopIteration as stop:
                self._built(stop.value)
            except (UserError, LibraryError, OSError) as err:
                self.fail(f"{self.title} failed. {err}")
                raise
            except BaseException:
                self.fail(f"{self.title} failed (the system console has the details)")
                raise
        return self.path

    def cancel(self) -> None:
        """Esc: stop rendering, clean up (the previous library is kept)."""
        self.steps.close()
        self.end_cancelled("Library not built (cancelled): the previous library is kept")

    def _built(self, path: str) -> None:
        self.path = path
        p = self.props()
        if p is not None:
            p.library_path, p.library = self.out, "CUSTOM"
            p.target = bpy.data.objects.get(self.rig_name)
        self.finish(f"Library of {self.count} poses written to {self.out}")
