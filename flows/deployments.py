"""Scheduling and task runners: the campaign's cron, its task runner (threads, or an existing Dask cluster)."""

from __future__ import annotations

import os

from prefect.task_runners import ThreadPoolTaskRunner

from db import service
from db.engine import database_url, session_scope, store_engine
from e2t_al.config import CampaignConfig
from flows.campaign import campaign_iteration


def task_runner_for(config: CampaignConfig):
    """Threads by default; ``task_runner: dask`` with ``dask_address`` uses that Dask cluster's workers."""
    if config.task_runner == "dask":
        if not config.dask_address:
            raise ValueError("task_runner dask needs dask_address (the scheduler of an existing Dask cluster)")
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=config.dask_address)
    return ThreadPoolTaskRunner(max_workers=max(1, os.cpu_count() or 1))


def campaign_config(campaign: str, url: str | None = None) -> CampaignConfig:
    with session_scope(store_engine(url)) as session:
        return CampaignConfig.model_validate(service.get_campaign(session, campaign).config)


def iteration_deployment(campaign: str, url: str | None = None):
    """The iteration flow as a deployment on the campaign's cron."""
    config = campaign_config(campaign, url)
    if not config.schedule_cron:
        raise ValueError(f"campaign {campaign!r} has no schedule_cron in its config")
    flow = campaign_iteration.with_options(task_runner=task_runner_for(config))
    return flow.to_deployment(name=f"iteration-{campaign}", cron=config.schedule_cron,
                              parameters={"campaign": campaign, "database_url": database_url(url)})


def serve_campaign(campaign: str, url: str | None = None) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise ValueError("schedules need a Prefect server: run `prefect server start` and set "
                         "PREFECT_API_URL=http://127.0.0.1:4200/api (the ephemeral mode cannot keep a schedule)")
    from prefect import serve

    serve(iteration_deployment(campaign, url))
