-- Platform: Supabase-compatible auth layer.
--
-- * Roles anon, authenticated (NOLOGIN) and service_role (NOLOGIN, BYPASSRLS) are created
--   only if missing. Roles are cluster-wide and shared by every database of the cluster, so
--   creation tolerates a concurrent migration in another database creating the same role
--   (duplicate_object / unique_violation are caught). Roles are never dropped.
-- * Schema auth, auth.users and auth.uid()/auth.role()/auth.jwt() are created only when the
--   database has no schema auth yet. On Supabase (auth already there) nothing inside auth is
--   created or changed. When this migration creates the schema it marks it with a COMMENT;
--   DOWN removes the auth objects only when that marker is present, so on Supabase DOWN is a
--   no-op.
-- * The auth functions follow Supabase's own definitions: LANGUAGE sql STABLE, no SET clause
--   (a SET clause would stop PostgreSQL from inlining them), with every function and type
--   they use qualified by pg_catalog so the result does not depend on the caller's
--   search_path. They are SECURITY INVOKER.
-- UP
DO $platform_roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        BEGIN
            CREATE ROLE anon NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently by a migration in another database
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        BEGIN
            CREATE ROLE authenticated NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        BEGIN
            CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$platform_roles$;

DO $platform_auth$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'auth') THEN
        RAISE NOTICE 'schema auth already exists (Supabase): 0001_platform_auth leaves it unchanged';
        RETURN;
    END IF;

    CREATE SCHEMA auth;
    COMMENT ON SCHEMA auth IS 'created by migration 0001_platform_auth';

    CREATE TABLE auth.users (
        instance_id        uuid,
        id                 uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
        aud                varchar(255),
        role               varchar(255),
        email              varchar(255),
        encrypted_password varchar(255),
        email_confirmed_at timestamptz,
        last_sign_in_at    timestamptz,
        raw_app_meta_data  jsonb,
        raw_user_meta_data jsonb,
        created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
        updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
        CONSTRAINT users_pkey PRIMARY KEY (id),
        CONSTRAINT users_email_key UNIQUE (email)
    );
    -- Like Supabase: only the owner (and the auth service) reads auth.users; API roles get
    -- no table privileges. RLS on with no policy is a second fence.
    ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;

    CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE
    AS $fn$
        SELECT coalesce(
            nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
            (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb ->> 'sub')
        )::pg_catalog.uuid
    $fn$;

    CREATE FUNCTION auth.role() RETURNS text
        LANGUAGE sql STABLE
    AS $fn$
        SELECT coalesce(
            nullif(pg_catalog.current_setting('request.jwt.claim.role', true), ''),
            (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb ->> 'role')
        )::pg_catalog.text
    $fn$;

    CREATE FUNCTION auth.jwt() RETURNS jsonb
        LANGUAGE sql STABLE
    AS $fn$
        SELECT coalesce(
            nullif(pg_catalog.current_setting('request.jwt.claim', true), ''),
            nullif(pg_catalog.current_setting('request.jwt.claims', true), '')
        )::pg_catalog.jsonb
    $fn$;

    GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
    GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
END
$platform_auth$;

-- DOWN
DO $platform_auth_down$
BEGIN
    IF pg_catalog.obj_description(
           (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'auth'), 'pg_namespace')
       IS DISTINCT FROM 'created by migration 0001_platform_auth' THEN
        RAISE NOTICE 'schema auth was not created by 0001_platform_auth: left unchanged';
        RETURN;
    END IF;
    DROP FUNCTION auth.jwt();
    DROP FUNCTION auth.role();
    DROP FUNCTION auth.uid();
    DROP TABLE auth.users;
    -- no CASCADE: fails loudly if anything else still lives in schema auth
    DROP SCHEMA auth;
END
$platform_auth_down$;
-- Roles anon, authenticated, service_role are cluster-wide and intentionally not dropped.
