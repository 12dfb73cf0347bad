"""On the real Temporal dev server (and the session's shared database, cleaned up after): the worker's start creates one pull schedule per source at its configured
cadence, and a run of the schedule (triggered now) imports the stand-in's records through the pull workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from temporalio.testing import WorkflowEnvironment

from cli.archive import ensure_archive_pull_schedules
from cli.worker import build_worker
from db.models import ArchiveImport, ArchivePull, ArchiveValue, Enterprise
from db.session import transaction
from gateways.datashare import DataShareClient
from gateways.factory import build_gateways
from settings import Settings
from standins.datashare import DataShareServer, DataShareStandIn
from tests.factories import new_enterprise
from tests.stack import fresh_namespace
from tests.support import eventually
from workflows.archive_pull import ArchivePullWorkflow, schedule_id
from workflows.client import connect

KEY, SECRET = "zhida-schedule-test", "secret-of-the-schedule-test"


@pytest.fixture
def datashare() -> Iterator[DataShareServer]:
    with DataShareServer(DataShareStandIn(apps={KEY: SECRET})) as server:
        yield server


async def test_one_schedule_per_source_at_its_cadence_and_a_scheduled_run_imports(
    datashare: DataShareServer, temporal_env: WorkflowEnvironment, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_namespace=await fresh_namespace(temporal_env.client, "archive"),
        temporal_task_queue="zhida-archive-pull-test",
        datashare_url=datashare.url,
        datashare_app_key=KEY,
        datashare_app_secret=SECRET,
    )
    with transaction(settings.db_url) as session:
        enterprise = new_enterprise(session, employees=2)
        uscc, enterprise_id = enterprise.uscc, enterprise.id
    datashare.state.put("social_insurance", [{"uscc": uscc, "employees": 77, "data_date": "2026-11-30"}])
    client = await connect(settings)
    made = await ensure_archive_pull_schedules(client, settings)
    assert made == [schedule_id(s) for s in ("market", "tax", "social", "tech", "credit")]
    assert await ensure_archive_pull_schedules(client, settings) == made  # at every worker start: updated, not doubled
    described = await client.get_schedule_handle(schedule_id("social")).describe()
    [calendar] = described.schedule.spec.calendars
    assert (calendar.day_of_month[0].start, calendar.hour[0].start) == (2, 3)  # monthly, as the source says
    assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
    daily = (await client.get_schedule_handle(schedule_id("credit")).describe()).schedule.spec.calendars[0]
    assert (daily.day_of_month[0].start, daily.day_of_month[0].end, daily.hour[0].start) == (1, 31, 2)

    platform = DataShareClient(settings.datashare_url, KEY, SECRET)
    gateways = build_gateways(settings, datashare=platform)
    async with build_worker(client, settings, gateways=gateways, workflows=[ArchivePullWorkflow]):
        await client.get_schedule_handle(schedule_id("social")).trigger()

        def pulled() -> ArchivePull | None:
            with transaction(settings.db_url) as session:
                return session.scalar(select(ArchivePull).where(ArchivePull.trigger == "schedule"))

        row = await eventually(pulled, what="the scheduled pull to be recorded", timeout=60)
    platform.close()
    assert (row.source, row.status, row.records, row.import_id is not None) == ("social", "succeeded", 1, True)
    with transaction(settings.db_url) as session:
        assert session.get(Enterprise, enterprise_id).employees == 77
        # the session's shared database: leave nothing behind
        for model, where in ((ArchivePull, ArchivePull.id == row.id), (ArchiveValue, ArchiveValue.enterprise_id == enterprise_id),
                             (ArchiveImport, ArchiveImport.id == row.import_id), (Enterprise, Enterprise.id == enterprise_id)):  # fmt: skip
            session.execute(delete(model).where(where))
    for sid in made:
        await client.get_schedule_handle(sid).delete()
