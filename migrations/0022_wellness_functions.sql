-- wellness: updated_at trigger function and its four triggers, get_wellness_stats,
-- get_wellness_streak.
-- Every function has SET search_path = '' and schema-qualifies what it uses.
-- The two stats functions are SECURITY INVOKER: they read wellness_entries under the caller's
-- RLS, so a signed-in user only ever aggregates their own entries. They also refuse, with
-- insufficient_privilege, a request for another user's data from a caller subject to RLS
-- (instead of silently answering with zeros); service_role and superusers (BYPASSRLS) may
-- ask for any user. EXECUTE is granted to authenticated and service_role only.
-- UP

-- ============================================
-- updated_at maintenance
-- ============================================
CREATE FUNCTION wellness.update_updated_at_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $fn$
BEGIN
    NEW.updated_at = pg_catalog.now();
    RETURN NEW;
END;
$fn$;

CREATE TRIGGER update_users_updated_at
    BEFORE UPDATE ON wellness.users
    FOR EACH ROW EXECUTE FUNCTION wellness.update_updated_at_column();

CREATE TRIGGER update_wellness_updated_at
    BEFORE UPDATE ON wellness.wellness_entries
    FOR EACH ROW EXECUTE FUNCTION wellness.update_updated_at_column();

CREATE TRIGGER update_progress_updated_at
    BEFORE UPDATE ON wellness.module_progress
    FOR EACH ROW EXECUTE FUNCTION wellness.update_updated_at_column();

CREATE TRIGGER update_conversations_updated_at
    BEFORE UPDATE ON wellness.conversations
    FOR EACH ROW EXECUTE FUNCTION wellness.update_updated_at_column();

-- ============================================
-- get_wellness_stats: averages over the last p_days days (0 = today only)
-- ============================================
CREATE FUNCTION wellness.get_wellness_stats(
    p_user_id uuid,
    p_days integer DEFAULT 30
)
RETURNS TABLE (
    avg_sleep numeric,
    avg_mood numeric,
    avg_energy numeric,
    avg_water integer,
    avg_exercise integer,
    avg_meditation integer,
    entries_count bigint
)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = ''
AS $fn$
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'get_wellness_stats: p_user_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_days IS NULL OR p_days < 0 OR p_days > 3650 THEN
        RAISE EXCEPTION 'get_wellness_stats: p_days must be between 0 and 3650, got %', p_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_user_id IS DISTINCT FROM (SELECT auth.uid())
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                       WHERE r.rolname = current_user AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'get_wellness_stats: a user may only read their own statistics'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    RETURN QUERY
    SELECT
        pg_catalog.avg(we.sleep_hours)::numeric(4,2),
        pg_catalog.avg(we.mood_score)::numeric(4,2),
        pg_catalog.avg(we.energy_level)::numeric(4,2),
        pg_catalog.avg(we.water_intake_ml)::integer,
        pg_catalog.avg(we.exercise_minutes)::integer,
        pg_catalog.avg(we.meditation_minutes)::integer,
        pg_catalog.count(*)::bigint
    FROM wellness.wellness_entries we
    WHERE we.user_id = p_user_id
      AND we.date >= CURRENT_DATE - p_days;
END;
$fn$;

-- ============================================
-- get_wellness_streak: consecutive days with an entry, ending today (or yesterday)
-- ============================================
CREATE FUNCTION wellness.get_wellness_streak(p_user_id uuid)
RETURNS TABLE (
    streak integer,
    last_entry date,
    total_entries bigint
)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = ''
AS $fn$
DECLARE
    v_current date;
    v_streak integer := 0;
    v_last date;
    v_count bigint;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'get_wellness_streak: p_user_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_user_id IS DISTINCT FROM (SELECT auth.uid())
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                       WHERE r.rolname = current_user AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'get_wellness_streak: a user may only read their own streak'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT pg_catalog.max(we.date), pg_catalog.count(*) INTO v_last, v_count
    FROM wellness.wellness_entries we
    WHERE we.user_id = p_user_id;

    IF v_count = 0 THEN
        RETURN QUERY SELECT 0, NULL::date, 0::bigint;
        RETURN;
    END IF;

    v_current := CURRENT_DATE;

    -- the streak may end today or, if today has no entry yet, yesterday
    IF NOT EXISTS (
        SELECT 1 FROM wellness.wellness_entries we
        WHERE we.user_id = p_user_id AND we.date = v_current
    ) THEN
        v_current := v_current - 1;
    END IF;

    -- count consecutive days (one index probe on wellness_user_date_idx per day)
    WHILE EXISTS (
        SELECT 1 FROM wellness.wellness_entries we
        WHERE we.user_id = p_user_id AND we.date = v_current
    ) LOOP
        v_streak := v_streak + 1;
        v_current := v_current - 1;
    END LOOP;

    RETURN QUERY SELECT v_streak, v_last, v_count;
END;
$fn$;

REVOKE ALL ON FUNCTION wellness.get_wellness_stats(uuid, integer) FROM PUBLIC, anon;
REVOKE ALL ON FUNCTION wellness.get_wellness_streak(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION wellness.get_wellness_stats(uuid, integer) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION wellness.get_wellness_streak(uuid) TO authenticated, service_role;

-- DOWN
DROP FUNCTION wellness.get_wellness_streak(uuid);
DROP FUNCTION wellness.get_wellness_stats(uuid, integer);
DROP TRIGGER update_conversations_updated_at ON wellness.conversations;
DROP TRIGGER update_progress_updated_at ON wellness.module_progress;
DROP TRIGGER update_wellness_updated_at ON wellness.wellness_entries;
DROP TRIGGER update_users_updated_at ON wellness.users;
DROP FUNCTION wellness.update_updated_at_column();
