-- Webhook outbox: a finished job whose tenant has a webhook is "notified" once its call
-- succeeded (or was given up). Finished jobs still un-notified after the retries would
-- have ended are queued again, so a worker dying between finishing a job and queueing
-- its webhook loses no call.
ALTER TABLE media_jobs ADD COLUMN notified_at timestamptz;
CREATE INDEX media_jobs_unnotified ON media_jobs (tenant_id, finished_at)
    WHERE notified_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled');
