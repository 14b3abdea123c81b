-- coach: functions and triggers (source: seeds/000, "Database functions and triggers").
-- UP
CREATE FUNCTION coach.update_updated_at_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at = pg_catalog.now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER update_users_updated_at
    BEFORE UPDATE ON coach.users
    FOR EACH ROW EXECUTE FUNCTION coach.update_updated_at_column();

-- Queue an analysis job once 25 of a user's messages are waiting to be analysed.
-- SECURITY DEFINER: the trigger fires in the session of the signed-in user, who has no
-- privileges on coach.job_queue (service only). One pending job per user at a time, so
-- messages 26, 27, ... do not queue duplicates while the job is waiting.
CREATE FUNCTION coach.queue_analysis_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF NEW.sender_type = 'user'
       AND NOT NEW.analysis_included
       AND (SELECT pg_catalog.count(*)
              FROM coach.conversations c
             WHERE c.user_id = NEW.user_id
               AND c.sender_type = 'user'
               AND NOT c.analysis_included) >= 25
       AND NOT EXISTS (SELECT 1
                         FROM coach.job_queue j
                        WHERE j.name = 'analysis_job'
                          AND j.completed_at IS NULL
                          AND (j.data ->> 'user_id') = NEW.user_id::text)
    THEN
        INSERT INTO coach.job_queue (name, data)
        VALUES ('analysis_job', pg_catalog.jsonb_build_object('user_id', NEW.user_id));
    END IF;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION coach.queue_analysis_check() FROM PUBLIC;

CREATE TRIGGER trigger_analysis_queue
    AFTER INSERT ON coach.conversations
    FOR EACH ROW EXECUTE FUNCTION coach.queue_analysis_check();

-- DOWN
DROP TRIGGER trigger_analysis_queue ON coach.conversations;
DROP FUNCTION coach.queue_analysis_check();
DROP TRIGGER update_users_updated_at ON coach.users;
DROP FUNCTION coach.update_updated_at_column();
