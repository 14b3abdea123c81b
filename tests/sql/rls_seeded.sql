-- RLS on the seed test set: every seeded user sees exactly the rows that are theirs.
-- Run as a superuser on a database at head after `migrate seed test` (seeds/base, then
-- seeds/test), inside one transaction that the harness rolls back (no BEGIN/COMMIT here).
--
-- For each seeded user (seeds/README.md: 00000000-0000-4000-8000-5eedD000000N) and each table
-- of the five domain schemas, not only the user's own domain:
--   1. as superuser, the rows the user owns by the rule below;
--   2. as `authenticated` with the user's claims, the rows the user can see;
--   3. every row seen must be owned, and as many rows seen as owned.
-- Rows are compared by ctid, which nothing in this transaction changes. A table clients cannot
-- read (no SELECT privilege) passes when the read is refused. A readable table without a rule
-- fails the run, so a new table cannot go unchecked; nor can a table no seeded user owns a
-- row of, nor a database without the seeded users (the check would hold vacuously). anon
-- sees nothing of any table.
--
-- Rules, in terms of `t` (the table) and $1 (the user). Unless listed: `<schema>.users` is
-- owned through `id`, any other table through `user_id`. The listed ones follow ownership
-- from the data, not the policies' own paths: partner through the relationship's
-- partner_a_id / partner_b_id (relationship_members is derived from them by a trigger),
-- message suggestions through the sender's side, a soft-deleted partner message only to its
-- sender; signify lesson content through the lesson (active, or authored by the user);
-- messages through their conversation.

DO $$
DECLARE
    domains constant text[] := ARRAY['coach', 'wellness', 'partner', 'signify', 'counsel'];
    -- seeds/README.md: how many users each domain seeds
    users_per_domain constant int[] := ARRAY[3, 3, 4, 3, 3];
    -- relationships the user is a partner in
    rels constant text := '(SELECT r.id FROM partner.relationships r WHERE $1 IN (r.partner_a_id, r.partner_b_id))';
    -- lessons the user may read
    readable constant text := '(SELECT l.id FROM signify.lessons l WHERE l.is_active OR l.author_id = $1)';
    rules constant jsonb := jsonb_build_object(
        'wellness.messages',
            't.conversation_id IN (SELECT c.id FROM wellness.conversations c WHERE c.user_id = $1)',
        'partner.relationships', '$1 IN (t.partner_a_id, t.partner_b_id)',
        'partner.relationship_members', 't.relationship_id IN ' || rels,
        'partner.partner_conversations', 't.relationship_id IN ' || rels,
        'partner.partner_messaging_preferences', 't.relationship_id IN ' || rels,
        'partner.escalation_events', 't.relationship_id IN ' || rels,
        'partner.partner_messages',
            'EXISTS (SELECT 1 FROM partner.partner_conversations c
                     JOIN partner.relationships r ON r.id = c.relationship_id
                     WHERE c.id = t.conversation_id AND $1 IN (r.partner_a_id, r.partner_b_id)
                       AND (t.deleted_at IS NULL
                            OR (t.sender_id = ''partner_a'' AND r.partner_a_id = $1)
                            OR (t.sender_id = ''partner_b'' AND r.partner_b_id = $1)))',
        'partner.message_suggestions',
            'EXISTS (SELECT 1 FROM partner.partner_conversations c
                     JOIN partner.relationships r ON r.id = c.relationship_id
                     WHERE c.id = t.conversation_id
                       AND ((t.sender_id = ''partner_a'' AND r.partner_a_id = $1)
                         OR (t.sender_id = ''partner_b'' AND r.partner_b_id = $1)))',
        'signify.lessons', 't.is_active OR t.author_id = $1',
        'signify.notes', 't.lesson_id IN ' || readable,
        'signify.tests', 't.lesson_id IN ' || readable,
        'signify.tests_content',
            't.test_id IN (SELECT s.id FROM signify.tests s JOIN signify.lessons l ON l.id = s.lesson_id
                           WHERE l.author_id = $1)',
        'signify.media_assets',
            't.owner_id = $1 OR t.id IN (SELECT l.cover_media_id FROM signify.lessons l
                                         WHERE l.is_active OR l.author_id = $1)',
        'signify.chat_messages',
            't.chat_id IN (SELECT c.id FROM signify.chat_sessions c WHERE c.user_id = $1)',
        'counsel.coaching_messages',
            't.conversation_id IN (SELECT c.id FROM counsel.coaching_conversations c WHERE c.user_id = $1)'
    );
    missing uuid[];
    u record;
    tbl record;
    rule text;
    owned tid[];
    visible tid[];
    refused boolean;
    not_theirs bigint;
    n bigint;
    in_own_domain bigint;
    owned_by_anyone jsonb := '{}';
BEGIN
    missing := ARRAY(
        SELECT format('00000000-0000-4000-8000-5eed%s000000%s', d, k)::uuid
        FROM generate_subscripts(users_per_domain, 1) AS d, generate_series(1, users_per_domain[d]) AS k
        EXCEPT SELECT id FROM auth.users);
    ASSERT cardinality(missing) = 0,
        format('seeded users missing from auth.users: %s; load the seed test set first', missing);

    FOR u IN SELECT a.id, a.email, domains[substr(a.id::text, 29, 1)::int] AS domain
             FROM auth.users a
             WHERE a.id::text ~ '^00000000-0000-4000-8000-5eed[1-5]000000[0-9]$'
             ORDER BY a.id LOOP
        in_own_domain := 0;
        FOR tbl IN SELECT c.oid::regclass::text AS name, n.nspname AS schema, c.relname
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = ANY(domains) AND c.relkind IN ('r', 'p', 'm')
                     AND NOT c.relispartition
                   ORDER BY 1 LOOP
            -- what the user sees
            PERFORM set_config('request.jwt.claims',
                json_build_object('sub', u.id, 'role', 'authenticated')::text, true);
            SET LOCAL ROLE authenticated;
            refused := false;
            BEGIN
                EXECUTE format('SELECT ARRAY(SELECT ctid FROM %s ORDER BY ctid)', tbl.name) INTO visible;
            EXCEPTION WHEN insufficient_privilege THEN refused := true;
            END;
            RESET ROLE;
            CONTINUE WHEN refused;

            -- what the user owns
            rule := rules ->> tbl.name;
            IF rule IS NULL AND tbl.relname = 'users' THEN
                rule := 't.id = $1';
            ELSIF rule IS NULL AND EXISTS (
                    SELECT 1 FROM pg_attribute
                    WHERE attrelid = tbl.name::regclass AND attname = 'user_id' AND NOT attisdropped) THEN
                rule := 't.user_id = $1';
            END IF;
            IF rule IS NULL THEN
                RAISE EXCEPTION '%: clients can read it but tests/sql/rls_seeded.sql has no ownership rule for it',
                    tbl.name;
            END IF;
            EXECUTE format('SELECT ARRAY(SELECT ctid FROM %s t WHERE %s ORDER BY ctid)', tbl.name, rule)
                INTO owned USING u.id;

            SELECT count(*) INTO not_theirs FROM unnest(visible) AS v WHERE v <> ALL (owned);
            ASSERT not_theirs = 0,
                format('%s: seeded %s user %s (%s) sees %s rows that are not theirs',
                       tbl.name, u.domain, u.email, u.id, not_theirs);
            ASSERT cardinality(visible) = cardinality(owned),
                format('%s: seeded %s user %s (%s) sees %s rows, owns %s',
                       tbl.name, u.domain, u.email, u.id, cardinality(visible), cardinality(owned));

            owned_by_anyone := jsonb_set(owned_by_anyone, ARRAY[tbl.name],
                to_jsonb(coalesce((owned_by_anyone ->> tbl.name)::bigint, 0) + cardinality(owned)));
            IF tbl.schema = u.domain THEN
                in_own_domain := in_own_domain + cardinality(owned);
            END IF;
        END LOOP;
        ASSERT in_own_domain > 0,
            format('%s: seeded user %s (%s) owns no rows in its own domain', u.domain, u.email, u.id);

        -- signify's metrics are read through my_practice_metrics(), never from the view itself
        SELECT count(*) INTO n FROM signify.practice_metrics_daily WHERE user_id = u.id;
        PERFORM set_config('request.jwt.claims',
            json_build_object('sub', u.id, 'role', 'authenticated')::text, true);
        SET LOCAL ROLE authenticated;
        ASSERT (SELECT count(*) FROM signify.my_practice_metrics()) = n,
            format('signify.my_practice_metrics: seeded %s user %s (%s) should get its %s rows',
                   u.domain, u.email, u.id, n);
        RESET ROLE;
    END LOOP;

    -- every readable table was checked against rows someone owns
    FOR tbl IN SELECT key AS name FROM jsonb_each_text(owned_by_anyone) WHERE value::bigint = 0 LOOP
        RAISE EXCEPTION '%: no seeded user owns a row of it, so its check proved nothing; is the seed test set loaded?',
            tbl.name;
    END LOOP;
    RAISE NOTICE 'rows owned by seeded users, per table checked: %', owned_by_anyone;

    -- anon sees nothing of any table
    PERFORM pg_temp.act_as('anon');
    PERFORM pg_temp.anon_sees_nothing(ARRAY(
        SELECT c.oid::regclass::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY(domains) AND c.relkind IN ('r', 'p', 'm')
         ORDER BY 1));
    RESET ROLE;
END $$;
