from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tokens.services.federation import used_assertions_prune
from tokens.services.retention import PRUNE_BATCH, runs_prune


class Command(BaseCommand):
    help = (
        "Remove runs older than RUN_RETENTION_DAYS (400 by default) from the governance record, "
        "in small batches, each audited, and forget the workload tokens exchanged that have "
        "expired. Meant for cron, daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="keep this many days instead of RUN_RETENTION_DAYS")
        parser.add_argument("--batch", type=int, default=PRUNE_BATCH,
                            help="runs deleted per transaction")

    def handle(self, *args, days, batch, **options):
        days = settings.RUN_RETENTION_DAYS if days is None else days
        if days < 1 or batch < 1:
            raise CommandError("--days and --batch must be at least 1.")
        before = timezone.now() - timedelta(days=days)
        deleted = runs_prune(before=before, batch=batch)
        self.stdout.write(f"{deleted} run{'s' if deleted != 1 else ''} started before "
                          f"{before:%Y-%m-%d %H:%M} UTC removed.")
        forgotten = used_assertions_prune(now=timezone.now())
        self.stdout.write(f"{forgotten} expired workload token{'s' if forgotten != 1 else ''} "
                          "forgotten (each could be exchanged once).")
