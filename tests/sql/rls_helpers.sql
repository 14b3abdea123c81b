-- Helpers for the RLS scripts tests/sql/rls_*.sql: run this first, as superuser, in the same
-- transaction as the script. The functions live in pg_temp, so they vanish with the session
-- and never touch the schema under test; they are SECURITY INVOKER, so every statement runs
-- as the role the script has switched to (functions are executable by PUBLIC, and every role
-- may use the session's temporary schema).
-- Each assertion raises with the given message, which names the table, and fails the run.

-- Switches to `role` with JWT claims {"sub": sub, "role": role}, like
-- RESET ROLE; SELECT set_config('request.jwt.claims', ..., true); SET LOCAL ROLE role;
-- Both settings are transaction-local and outlast the call. Resetting first makes the switch
-- be checked against the superuser session, not against the role currently in effect.
CREATE FUNCTION pg_temp.act_as(role text, sub uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', 'none', true);
    PERFORM set_config('request.jwt.claims',
        jsonb_strip_nulls(jsonb_build_object('sub', sub, 'role', role))::text, true);
    PERFORM set_config('role', role, true);
END $$;

-- As anon, each of `tables` shows 0 rows (permission denied counts as seeing none).
CREATE FUNCTION pg_temp.anon_sees_nothing(tables text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    n bigint;
BEGIN
    ASSERT current_user = 'anon', 'anon_sees_nothing runs as ' || current_user || ', not anon';
    FOREACH t IN ARRAY tables LOOP
        BEGIN
            EXECUTE 'SELECT count(*) FROM ' || t INTO n;
        EXCEPTION WHEN insufficient_privilege THEN n := 0;
        END;
        ASSERT n = 0, t || ': anon should see 0 rows, saw ' || n;
    END LOOP;
END $$;

-- The single value `sql` returns equals `expected`.
CREATE FUNCTION pg_temp.assert_count(sql text, expected bigint, message text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE sql INTO n;
    ASSERT n IS NOT DISTINCT FROM expected, message || ' (saw ' || coalesce(n::text, 'NULL') || ')';
END $$;

-- `sql` (INSERT/UPDATE/DELETE) changes exactly `expected` rows. With `undo`, it runs in a
-- subtransaction that is rolled back, so later counts stay put.
CREATE FUNCTION pg_temp.assert_affects(sql text, expected bigint, message text,
                                       undo boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    IF undo THEN
        BEGIN
            EXECUTE sql;
            GET DIAGNOSTICS n = ROW_COUNT;
            RAISE EXCEPTION 'undo' USING ERRCODE = 'ZR001';
        EXCEPTION WHEN SQLSTATE 'ZR001' THEN NULL;
        END;
    ELSE
        EXECUTE sql;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    ASSERT n = expected, message || ': changed ' || n || ' rows, expected ' || expected;
END $$;

-- `sql` (UPDATE/DELETE of another user's rows) changes nothing. With `or_refused`, being
-- refused by a privilege (a table with no client grant for the command) counts as nothing too.
CREATE FUNCTION pg_temp.assert_no_rows_affected(sql text, message text,
                                                or_refused boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_temp.assert_affects(sql, 0, message);
EXCEPTION WHEN insufficient_privilege THEN
    IF NOT or_refused THEN
        RAISE;
    END IF;
END $$;

-- `sql` is refused with an error whose SQLSTATE is one of `sqlstates`; any other error fails
-- the run as it is. The default is a privilege or a policy (42501 insufficient_privilege: a
-- policy's WITH CHECK raises it too) or a CHECK constraint (23514 check_violation); pass e.g.
-- '{23503}' (foreign_key_violation) or '{42501}' where only that refusal is right.
CREATE FUNCTION pg_temp.assert_fails(sql text, message text,
                                     sqlstates text[] DEFAULT '{42501,23514}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = 'P0004';  -- assert_failure
EXCEPTION WHEN OTHERS THEN  -- OTHERS never catches assert_failure
    IF SQLSTATE <> ALL (sqlstates) THEN
        RAISE;
    END IF;
END $$;
