-- Platform: extensions uuid-ossp, pgcrypto, citext in schema extensions (as Supabase does).
--
-- * Schema extensions and each extension are created only if missing. On Supabase the
--   schema, uuid-ossp and pgcrypto already exist and are left untouched.
-- * What UP created is marked on the objects it created and therefore owns: COMMENT ON
--   SCHEMA extensions (only when UP created the schema) and COMMENT ON EXTENSION for each
--   extension it created, both 'created by migration 0002_platform_extensions'. It never
--   writes on a schema it does not own: on hosted Supabase `postgres` (or a narrower
--   migration role) does not own `extensions`. DOWN drops exactly what carries the marker.
-- * Domain SQL references extension objects schema-qualified (extensions.citext,
--   extensions.digest(...)), so an extension already installed in another schema is an
--   error with a remedy rather than something silently moved.
-- UP
DO $platform_ext$
DECLARE
    marker constant text := 'created by migration 0002_platform_extensions';
    ext             text;
    ext_schema      text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'extensions') THEN
        CREATE SCHEMA extensions;
        GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
        EXECUTE pg_catalog.format('COMMENT ON SCHEMA extensions IS %L', marker);
    END IF;

    FOREACH ext IN ARRAY ARRAY['uuid-ossp', 'pgcrypto', 'citext'] LOOP
        SELECT n.nspname INTO ext_schema
          FROM pg_catalog.pg_extension e
          JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = ext;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('CREATE EXTENSION %I WITH SCHEMA extensions', ext);
            EXECUTE pg_catalog.format('COMMENT ON EXTENSION %I IS %L', ext, marker);
        ELSIF ext_schema <> 'extensions' THEN
            RAISE EXCEPTION 'extension % is installed in schema %, but the migrations reference it as extensions.*', ext, ext_schema
                USING HINT = pg_catalog.format('ALTER EXTENSION %I SET SCHEMA extensions;', ext);
        END IF;
    END LOOP;
END
$platform_ext$;

-- DOWN
DO $platform_ext_down$
DECLARE
    marker constant text := 'created by migration 0002_platform_extensions';
    ext             text;
BEGIN
    FOR ext IN SELECT e.extname FROM pg_catalog.pg_extension e
                WHERE e.extname IN ('citext', 'pgcrypto', 'uuid-ossp')
                  AND pg_catalog.obj_description(e.oid, 'pg_extension') = marker
                ORDER BY e.extname LOOP
        EXECUTE pg_catalog.format('DROP EXTENSION %I', ext);  -- no CASCADE: fails if still used
    END LOOP;
    IF pg_catalog.obj_description(
           (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'extensions'), 'pg_namespace')
       = marker THEN
        DROP SCHEMA extensions;  -- no CASCADE: fails loudly if anything else lives there
    ELSE
        RAISE NOTICE 'schema extensions was not created by 0002_platform_extensions: left in place';
    END IF;
END
$platform_ext_down$;
