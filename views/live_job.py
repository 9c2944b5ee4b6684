"""The live view of a training job: every phase (queued, starting, training, stopping, testing, saving), one steady
ETA for the whole run, live curves and Stop, refreshed twice a second while the job is active."""

from __future__ import annotations

import time

import streamlit as st

from digitlab import charts, jobs
from views.ui import NO_TOOLBAR, count, curves_note, plain, seconds, select, visitor

PHASES = {"starting": "Starting: loading TensorFlow and the data", "testing": "Testing on the 10,000 test images",
          "saving": "Saving the model and its serving graph"}


def followed_job(owner: str) -> str | None:
    """The job this session follows: a job link, the one it started, else the visitor's newest active job (so a
    reload, or a second tab of the same browser, finds it)."""
    if "job" in st.query_params and "job_id" not in st.session_state:
        st.session_state.job_id = st.query_params["job"]
    if "job_id" not in st.session_state:
        mine = jobs.list_jobs(owner=owner, active=True)
        if mine:
            st.session_state.job_id = mine[0].job_id
    return st.session_state.get("job_id")


def job_view(job_id: str) -> bool:
    """Show the job; returns whether it is queued or running (False also when it cannot be shown)."""
    try:
        job = jobs.get_job(job_id)
        if visitor() is not None and job.owner != visitor():
            raise ValueError("that training belongs to another visitor of this public demo; start your own")
    except ValueError as error:
        st.warning(plain(str(error)), icon=":material/link_off:")
        st.session_state.pop("job_id", None)
        return False
    started_active = job.active

    @st.fragment(run_every=0.5 if started_active else None)
    def live():
        current = jobs.get_job(job_id)
        st.subheader(f"Run: {current.config.model.upper()} · {current.preset or 'custom'} · "
                     f"{count(current.config.num_epochs, 'epoch')}")
        _status(current)
        progress = current.progress or {}
        if progress.get("history") or progress.get("trace"):
            st.plotly_chart(charts.training_curves(progress.get("history", {}), running=progress.get("trace"),
                                                   num_epochs=progress.get("num_epochs"),
                                                   label_smoothing=current.config.label_smoothing), key="live-curves",
                            config=NO_TOOLBAR)
            st.caption(curves_note(current.config.label_smoothing))
        if started_active and not current.active:
            st.rerun()  # once, to stop polling and refresh the model lists

    live()
    if not started_active:
        nav = st.columns(3)
        nav[0].page_link("views/results.py", label="Study the results", icon=":material/insights:")
        nav[1].page_link("views/draw.py", label="Try it on a drawing", icon=":material/draw:")
        nav[2].page_link("views/compare.py", label="Compare with other runs", icon=":material/compare:")
    return started_active


def _status(job: jobs.Job) -> None:
    """One line (or bar) saying where the run is and how long it has left."""
    p = job.progress or {}
    phase, eta = p.get("phase", "starting"), p.get("eta")
    left = (f" · about {seconds(_steady_eta(job.job_id + '/' + phase, eta, p.get('time')))} left" if eta is not None
            else " · measuring its speed to tell the time left" if phase == "training" else "")
    if job.status == "queued":
        st.info(f"Queued: position {job.queue_position}, starts in about {seconds(job.wait_seconds)} (when the "
                "trainings ahead of it end). Stop takes it out of the queue.", icon=":material/hourglass_top:")
        _stop_button(job)
    elif job.status == "running" and job.cancel_requested:
        at = (f"during epoch {p['epoch']} of {p['num_epochs']}" if phase == "training" and "num_epochs" in p
              else "after training" if phase in ("testing", "saving") else "before its first epoch")
        left = "" if phase == "training" else left  # the training's ETA counted the epochs it will not run
        st.warning(f"Stopped {at}. Keeping what it learned: "
                   f"{PHASES.get(phase, 'finishing the last batches').lower()}{left}.", icon=":material/stop_circle:")
    elif job.status == "running" and phase == "training":
        st.progress(min(1.0, p.get("fraction", 0.0)), text=f"Training: epoch {p['epoch']}/{p['num_epochs']} · "
                    f"batch {p['batch']}/{p['batches_per_epoch']} · {seconds(p['elapsed'])} so far{left}")
        _stop_button(job)
    elif job.status == "running":
        st.progress(1.0 if phase in ("testing", "saving") else 0.0, text=f"{PHASES.get(phase, 'Working')}…{left}")
        _stop_button(job)
    elif job.status == "finished":
        s = job.summary
        if job.stopped == "time limit":
            st.warning(f"Stopped at the public demo's time limit of {seconds(job.max_seconds)}; the model as "
                       "trained so far is kept and tested.", icon=":material/timer:")
        early = f" ({job.stopped.replace('_', ' ')})" if job.stopped else ""
        st.success(f"Finished: test accuracy {s['test_accuracy']:.2%} after {count(s['epochs_run'], 'epoch')} in "
                   f"{seconds(s['train_seconds'])}{early}, {seconds(job.ended - job.started)} in all. It is now the "
                   "selected model.", icon=":material/check_circle:")
        select(job.run_id, job.config.model)
    elif job.status == "cancelled":
        message = "Stopped by you."
        if job.run_id:
            message += f" The model as trained so far is kept (test accuracy {job.summary['test_accuracy']:.2%})."
            select(job.run_id, job.config.model)
        st.warning(message, icon=":material/stop_circle:")
    else:
        st.error(plain(f"The run {job.status}: {job.error}. Nothing else was lost; start it again."),
                 icon=":material/error:")


def _stop_button(job: jobs.Job) -> None:
    if st.button("Stop", key="stop", icon=":material/stop:", help="Stops training at once; the model as trained "
                 "so far is tested and kept."):
        jobs.cancel_job(job.job_id, owner=visitor())
        st.rerun(scope="fragment")  # show "Stopped" now, not at the next refresh


def _steady_eta(key: str, eta: float, written: float | None) -> float:
    """The worker's ETA as `jobs.steady_eta` shows it, remembered per job and phase in this session (a new phase,
    such as testing after Stop, shows its own ETA at once)."""
    now, shown = time.time(), st.session_state.setdefault("eta", {})
    shown[key] = (jobs.steady_eta(max(0.0, eta - (now - (written or now))), shown=shown.get(key), now=now), now)
    return shown[key][0]
