-- signify: updated_at triggers, the guard that keeps XP and streak out of clients' hands, and
-- increment_xp(user_id, delta) (section 4).
-- Every function has SET search_path = '' and schema-qualifies what it uses.
--
-- XP rules:
-- * Clients (roles anon/authenticated) may not change users.xp or users.streak_count with a
--   plain UPDATE, although their row's UPDATE policy lets them edit their profile: the
--   trigger protect_users_progress rejects that. XP changes go through increment_xp.
-- * increment_xp(user_id, delta) is SECURITY DEFINER (it must write xp past that guard):
--   - delta must be an integer between 1 and 10000 (NULL, zero, negative or larger values are
--     rejected with invalid_parameter_value / null_value_not_allowed);
--   - a caller acting as a role subject to RLS (authenticated) may only increment their own
--     XP (user_id = auth.uid()); roles that bypass RLS (service_role, superusers) may
--     increment anyone's. The caller's role is the session's SET ROLE (what PostgREST sets),
--     or the session user when no role was set;
--   - the new total may not exceed 32767999 (users.level is a smallint);
--   - an unknown user raises no_data_found. It returns the new xp.
--   EXECUTE is granted to authenticated and service_role only.
-- UP

-- ============================================
-- updated_at maintenance (the six tables with updated_at)
-- ============================================
CREATE FUNCTION signify.update_updated_at_column()
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
    BEFORE UPDATE ON signify.users
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

CREATE TRIGGER update_user_settings_updated_at
    BEFORE UPDATE ON signify.user_settings
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

CREATE TRIGGER update_lessons_updated_at
    BEFORE UPDATE ON signify.lessons
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

CREATE TRIGGER update_notes_updated_at
    BEFORE UPDATE ON signify.notes
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

CREATE TRIGGER update_tests_updated_at
    BEFORE UPDATE ON signify.tests
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

CREATE TRIGGER update_chat_sessions_updated_at
    BEFORE UPDATE ON signify.chat_sessions
    FOR EACH ROW EXECUTE FUNCTION signify.update_updated_at_column();

-- ============================================
-- guard: clients cannot write xp / streak_count directly
-- ============================================
CREATE FUNCTION signify.protect_user_progress()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $fn$
BEGIN
    -- current_user is the role running the UPDATE (inside increment_xp: its owner)
    IF current_user IN ('anon', 'authenticated')
       AND (NEW.xp IS DISTINCT FROM OLD.xp OR NEW.streak_count IS DISTINCT FROM OLD.streak_count) THEN
        RAISE EXCEPTION 'signify.users: xp and streak_count cannot be changed directly; use signify.increment_xp()'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$fn$;

CREATE TRIGGER protect_users_progress
    BEFORE UPDATE ON signify.users
    FOR EACH ROW EXECUTE FUNCTION signify.protect_user_progress();

-- ============================================
-- increment_xp(user_id, delta): the one way to award XP
-- ============================================
CREATE FUNCTION signify.increment_xp(user_id uuid, delta integer)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = ''
AS $fn$
DECLARE
    v_caller text := pg_catalog.current_setting('role');
    v_xp bigint;
BEGIN
    IF v_caller = 'none' THEN
        v_caller := session_user;
    END IF;

    IF increment_xp.user_id IS NULL THEN
        RAISE EXCEPTION 'increment_xp: user_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF increment_xp.delta IS NULL THEN
        RAISE EXCEPTION 'increment_xp: delta must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF increment_xp.delta < 1 OR increment_xp.delta > 10000 THEN
        RAISE EXCEPTION 'increment_xp: delta must be between 1 and 10000, got %', increment_xp.delta
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF increment_xp.user_id IS DISTINCT FROM (SELECT auth.uid())
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                       WHERE r.rolname = v_caller AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'increment_xp: a user may only increment their own XP'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT u.xp INTO v_xp
    FROM signify.users u
    WHERE u.id = increment_xp.user_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'increment_xp: no signify user %', increment_xp.user_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_xp + increment_xp.delta > 32767999 THEN
        RAISE EXCEPTION 'increment_xp: xp would exceed the maximum of 32767999'
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    UPDATE signify.users u
    SET xp = u.xp + increment_xp.delta
    WHERE u.id = increment_xp.user_id
    RETURNING u.xp INTO v_xp;

    RETURN v_xp;
END;
$fn$;

REVOKE ALL ON FUNCTION signify.increment_xp(uuid, integer) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION signify.increment_xp(uuid, integer) TO authenticated, service_role;

-- DOWN
DROP FUNCTION signify.increment_xp(uuid, integer);
DROP TRIGGER protect_users_progress ON signify.users;
DROP FUNCTION signify.protect_user_progress();
DROP TRIGGER update_chat_sessions_updated_at ON signify.chat_sessions;
DROP TRIGGER update_tests_updated_at ON signify.tests;
DROP TRIGGER update_notes_updated_at ON signify.notes;
DROP TRIGGER update_lessons_updated_at ON signify.lessons;
DROP TRIGGER update_user_settings_updated_at ON signify.user_settings;
DROP TRIGGER update_users_updated_at ON signify.users;
DROP FUNCTION signify.update_updated_at_column();
