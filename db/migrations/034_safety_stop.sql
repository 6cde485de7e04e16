-- Delivery safety stop (docs/mx-rules.md): why a delivery is paused, and the attempts its check looks at.

-- {"by": "user" | "safety_stop", "reason": text, "at": iso time, ...details}; null while not paused.
ALTER TABLE deliveries ADD COLUMN pause_reason jsonb;
-- Attempts finished before this are not looked at again: set when a paused delivery resumes, so a person who resumes
-- after a safety stop gets the next N attempts judged on their own.
ALTER TABLE deliveries ADD COLUMN safety_window_from timestamptz;

-- The last N finished attempts of a delivery, newest first, without reading all of them.
CREATE INDEX send_attempts_finished_idx ON send_attempts (delivery_id, finished_at DESC) WHERE finished_at IS NOT NULL;
