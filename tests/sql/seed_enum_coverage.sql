-- Seed coverage: after `migrate seed test`, every value allowed by every enumerated CHECK of the
-- managed schemas (a CHECK of the form `col IN (...)`, deparsed as `col = ANY (ARRAY[...])`)
-- appears in at least one row. Run as a superuser; read-only.
--
-- The enumerations are read from pg_constraint, so a CHECK added by a later migration is
-- covered without editing this file, and the seeds must then be extended. The allowed values
-- are evaluated from the deparsed ARRAY expression itself, so nothing is parsed by hand.

DO $coverage$
DECLARE
    managed  constant text[] := ARRAY['coach', 'wellness', 'partner', 'signify', 'counsel'];
    -- enumerated CHECKs in the migrations at 0054; more is fine, fewer means the catalog
    -- query below stopped finding them (or a migration dropped one: then lower this)
    expected_min constant integer := 31;
    pattern  constant text :=
        '^CHECK \(\(\(?([a-z_][a-z0-9_]*)\)?(?:::[a-z ]+)? = ANY \((.+)\)\)\)$';
    c        record;
    parts    text[];
    missing  text[];
    gaps     text[] := '{}';
    found    integer := 0;
BEGIN
    FOR c IN
        SELECT n.nspname AS schema_name, r.relname AS table_name, k.conname,
               pg_catalog.pg_get_constraintdef(k.oid) AS def
          FROM pg_catalog.pg_constraint k
          JOIN pg_catalog.pg_class r ON r.oid = k.conrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
         WHERE k.contype = 'c'
           AND n.nspname = ANY (managed)
           AND r.relkind IN ('r', 'p')
           AND pg_catalog.pg_get_constraintdef(k.oid) LIKE '%= ANY (%ARRAY[%'
         ORDER BY 1, 2, 3
    LOOP
        parts := pg_catalog.regexp_match(c.def, pattern);
        -- an enumeration of another shape (quoted column, combined condition) must not be
        -- skipped silently
        ASSERT parts IS NOT NULL,
            pg_catalog.format('%I.%I: CHECK %I is not of the form col IN (...): %s',
                              c.schema_name, c.table_name, c.conname, c.def);
        found := found + 1;

        EXECUTE pg_catalog.format(
            'SELECT coalesce(pg_catalog.array_agg(e.v::text ORDER BY e.ord), ''{}'')
               FROM pg_catalog.unnest(%s) WITH ORDINALITY AS e(v, ord)
              WHERE NOT EXISTS (SELECT 1 FROM %I.%I t WHERE t.%I::text = e.v::text)',
            parts[2], c.schema_name, c.table_name, parts[1])
        INTO missing;

        IF pg_catalog.cardinality(missing) > 0 THEN
            gaps := gaps || pg_catalog.format('%s.%s.%s: %s', c.schema_name, c.table_name, parts[1],
                                              pg_catalog.array_to_string(missing, ', '));
        END IF;
    END LOOP;

    ASSERT found >= expected_min,
        pg_catalog.format('expected at least %s enumerated CHECKs in the managed schemas, found %s',
                          expected_min, found);
    ASSERT pg_catalog.cardinality(gaps) = 0,
        pg_catalog.format('enumerated values with no seeded row: %s',
                          pg_catalog.array_to_string(gaps, '; '));
    RAISE NOTICE 'seed coverage: all values of % enumerated columns are seeded', found;
END
$coverage$;
