-- Platform: extensions uuid-ossp, pgcrypto, citext in schema extensions (as Supabase does).
--
-- * Schema extensions and each extension are created only if missing. On Supabase the
--   schema, uuid-ossp and pgcrypto already exist and are left untouched.
-- * What UP created is recorded in a marker COMMENT ON SCHEMA extensions (a JSON document
--   that also keeps any comment the schema had before). DOWN drops exactly what the marker
--   lists, restores the previous comment, and never touches anything it did not create.
-- * Domain SQL references extension objects schema-qualified (extensions.citext,
--   extensions.digest(...)), so an extension already installed in another schema is an
--   error with a remedy rather than something silently moved.
-- UP
DO $platform_ext$
DECLARE
    ext            text;
    ext_schema     text;
    schema_created boolean := false;
    created        text[]  := '{}';
    prev_comment   text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'extensions') THEN
        CREATE SCHEMA extensions;
        GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
        schema_created := true;
    ELSE
        prev_comment := pg_catalog.obj_description(
            (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'extensions'), 'pg_namespace');
    END IF;

    FOREACH ext IN ARRAY ARRAY['uuid-ossp', 'pgcrypto', 'citext'] LOOP
        SELECT n.nspname INTO ext_schema
          FROM pg_catalog.pg_extension e
          JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = ext;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('CREATE EXTENSION %I WITH SCHEMA extensions', ext);
            created := created || ext;
        ELSIF ext_schema <> 'extensions' THEN
            RAISE EXCEPTION 'extension % is installed in schema %, but the migrations reference it as extensions.*', ext, ext_schema
                USING HINT = pg_catalog.format('ALTER EXTENSION %I SET SCHEMA extensions;', ext);
        END IF;
    END LOOP;

    IF schema_created OR pg_catalog.cardinality(created) > 0 THEN
        EXECUTE pg_catalog.format('COMMENT ON SCHEMA extensions IS %L',
            pg_catalog.jsonb_build_object(
                'created_by', '0002_platform_extensions',
                'schema_created', schema_created,
                'extensions', pg_catalog.to_jsonb(created),
                'previous_comment', prev_comment)::text);
    END IF;
END
$platform_ext$;

-- DOWN
DO $platform_ext_down$
DECLARE
    marker text;
    m      jsonb;
    ext    text;
BEGIN
    marker := pg_catalog.obj_description(
        (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'extensions'), 'pg_namespace');
    IF marker IS NULL OR marker NOT LIKE '{%"created_by": "0002_platform_extensions"%' THEN
        RAISE NOTICE 'nothing in schema extensions was created by 0002_platform_extensions: left unchanged';
        RETURN;
    END IF;
    m := marker::jsonb;
    FOR ext IN SELECT pg_catalog.jsonb_array_elements_text(m -> 'extensions') LOOP
        EXECUTE pg_catalog.format('DROP EXTENSION %I', ext);  -- no CASCADE: fails if still used
    END LOOP;
    IF (m ->> 'schema_created')::boolean THEN
        DROP SCHEMA extensions;  -- no CASCADE: fails loudly if anything else lives there
    ELSE
        EXECUTE pg_catalog.format('COMMENT ON SCHEMA extensions IS %L', m ->> 'previous_comment');
    END IF;
END
$platform_ext_down$;
