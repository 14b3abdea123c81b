-- RLS behaviour test for the wellness domain.
-- Run as a superuser on a fully migrated database, after tests/sql/rls_helpers.sql, inside one
-- transaction that is rolled back afterwards (see README, Tests). Any failed ASSERT raises and
-- fails the run.
-- User A = 00000000-0000-4000-8000-0000000020a1, user B = 00000000-0000-4000-8000-0000000020b1.
-- Correct on an empty database and on one holding seed data: A's and anon's counts are
-- totals (seeded rows must be as invisible as B's), service_role counts A's and B's rows.

-- ---------------------------------------------------------------- fixtures (as superuser)
INSERT INTO auth.users (id, email) VALUES
    ('00000000-0000-4000-8000-0000000020a1', 'wellness-a@example.com'),
    ('00000000-0000-4000-8000-0000000020b1', 'wellness-b@example.com');

INSERT INTO wellness.users (id, email, full_name, updated_at) VALUES
    ('00000000-0000-4000-8000-0000000020a1', 'wellness-a@example.com', 'Test User A', '2000-01-01T00:00:00Z'),
    ('00000000-0000-4000-8000-0000000020b1', 'wellness-b@example.com', 'Test User B', '2000-01-01T00:00:00Z');

-- A: 2 entries (today, yesterday) -> streak 2; B: 1 entry
INSERT INTO wellness.wellness_entries (id, user_id, date, sleep_hours, mood_score) VALUES
    ('00000000-0000-4000-8000-00000020e0a1', '00000000-0000-4000-8000-0000000020a1', CURRENT_DATE,     7.5, 0.80),
    ('00000000-0000-4000-8000-00000020e0a2', '00000000-0000-4000-8000-0000000020a1', CURRENT_DATE - 1, 6.5, 0.60),
    ('00000000-0000-4000-8000-00000020e0b1', '00000000-0000-4000-8000-0000000020b1', CURRENT_DATE,     8.0, 0.90);

INSERT INTO wellness.module_progress (id, user_id, module_name, progress_percentage) VALUES
    ('00000000-0000-4000-8000-00000020d0a1', '00000000-0000-4000-8000-0000000020a1', 'sleep', 10),
    ('00000000-0000-4000-8000-00000020d0b1', '00000000-0000-4000-8000-0000000020b1', 'sleep', 20);

INSERT INTO wellness.conversations (id, user_id, module_name, topic) VALUES
    ('00000000-0000-4000-8000-00000020c0a1', '00000000-0000-4000-8000-0000000020a1', 'sleep', 'A topic'),
    ('00000000-0000-4000-8000-00000020c0b1', '00000000-0000-4000-8000-0000000020b1', 'sleep', 'B topic');

INSERT INTO wellness.messages (id, conversation_id, role, content) VALUES
    ('00000000-0000-4000-8000-00000020f0a1', '00000000-0000-4000-8000-00000020c0a1', 'user', 'hello from A'),
    ('00000000-0000-4000-8000-00000020f0a2', '00000000-0000-4000-8000-00000020c0a1', 'assistant', 'hi A'),
    ('00000000-0000-4000-8000-00000020f0b1', '00000000-0000-4000-8000-00000020c0b1', 'user', 'hello from B');

-- ---------------------------------------------------------------- authenticated as A
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-0000000020a1');

-- A sees exactly A's rows
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM wellness.users) = 1, 'wellness.users: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM wellness.users WHERE id = '00000000-0000-4000-8000-0000000020a1') = 1, 'wellness.users: A should see own row';
    ASSERT (SELECT count(*) FROM wellness.wellness_entries) = 2, 'wellness.wellness_entries: authenticated A should see 2 rows';
    ASSERT (SELECT count(*) FROM wellness.wellness_entries WHERE user_id <> '00000000-0000-4000-8000-0000000020a1') = 0, 'wellness.wellness_entries: A sees a foreign row';
    ASSERT (SELECT count(*) FROM wellness.module_progress) = 1, 'wellness.module_progress: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM wellness.conversations) = 1, 'wellness.conversations: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM wellness.messages) = 2, 'wellness.messages: authenticated A should see 2 rows';
    ASSERT (SELECT count(*) FROM wellness.messages WHERE conversation_id <> '00000000-0000-4000-8000-00000020c0a1') = 0, 'wellness.messages: A sees a foreign row';
END $$;

-- A can change A's rows
DO $$
DECLARE n bigint;
BEGIN
    UPDATE wellness.users SET full_name = 'A renamed' WHERE id = '00000000-0000-4000-8000-0000000020a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.users: A should update own row, updated ' || n;
    UPDATE wellness.wellness_entries SET sleep_hours = 8 WHERE id = '00000000-0000-4000-8000-00000020e0a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.wellness_entries: A should update own row, updated ' || n;
    UPDATE wellness.module_progress SET progress_percentage = 50 WHERE id = '00000000-0000-4000-8000-00000020d0a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.module_progress: A should update own row, updated ' || n;
    UPDATE wellness.conversations SET topic = 'A topic 2' WHERE id = '00000000-0000-4000-8000-00000020c0a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.conversations: A should update own row, updated ' || n;
    INSERT INTO wellness.messages (conversation_id, role, content)
        VALUES ('00000000-0000-4000-8000-00000020c0a1', 'user', 'A again');
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.messages: A should insert into own conversation';
    INSERT INTO wellness.module_progress (user_id, module_name)
        VALUES ('00000000-0000-4000-8000-0000000020a1', 'nutrition');
    DELETE FROM wellness.module_progress
        WHERE user_id = '00000000-0000-4000-8000-0000000020a1' AND module_name = 'nutrition';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'wellness.module_progress: A should insert and delete own row, deleted ' || n;
END $$;

-- the updated_at trigger ran (the fixture row started with updated_at in 2000)
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM wellness.users WHERE full_name = 'A renamed' AND updated_at > '2001-01-01') = 1,
        'wellness.users: updated_at trigger did not set updated_at';
END $$;

-- UPDATE / DELETE of B's rows affect 0 rows
SELECT pg_temp.assert_no_rows_affected('UPDATE wellness.users SET full_name = ''hacked'' WHERE id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.users: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM wellness.users WHERE id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.users: A deleted B''s row', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE wellness.wellness_entries SET sleep_hours = 0 WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.wellness_entries: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM wellness.wellness_entries WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.wellness_entries: A deleted B''s row');

SELECT pg_temp.assert_no_rows_affected('UPDATE wellness.module_progress SET progress_percentage = 0 WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.module_progress: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM wellness.module_progress WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.module_progress: A deleted B''s row');

SELECT pg_temp.assert_no_rows_affected('UPDATE wellness.conversations SET topic = ''hacked'' WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.conversations: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM wellness.conversations WHERE user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.conversations: A deleted B''s row', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE wellness.messages SET content = ''hacked'' WHERE conversation_id = ''00000000-0000-4000-8000-00000020c0b1''', 'wellness.messages: A updated B''s row', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM wellness.messages WHERE conversation_id = ''00000000-0000-4000-8000-00000020c0b1''', 'wellness.messages: A deleted B''s row', or_refused => true);

-- Statements without WHERE are checked against the UPDATE/DELETE policies alone (SELECT
-- policies only join in when a statement reads columns): each runs in a subtransaction that
-- is rolled back, and must touch exactly the rows A owns. Where the document gives no policy,
-- clients hold no privilege either: refused outright.
SELECT pg_temp.assert_affects(upd, n_upd, 'wellness.' || tbl || ': unqualified UPDATE as A', undo => true),
       pg_temp.assert_affects(format('DELETE FROM wellness.%I', tbl), n_del,
                              'wellness.' || tbl || ': unqualified DELETE as A', undo => true)
  FROM (VALUES
    ('wellness_entries', 'UPDATE wellness.wellness_entries SET nutrition_notes = ''x''',   2, 2),
    ('module_progress',  'UPDATE wellness.module_progress SET notes = ''x''',              1, 1)
  ) AS v(tbl, upd, n_upd, n_del);
SELECT pg_temp.assert_affects('UPDATE wellness.users SET timezone = ''UTC''', 1, 'wellness.users: unqualified UPDATE as A', undo => true),
       pg_temp.assert_affects('UPDATE wellness.conversations SET topic = ''x''', 1, 'wellness.conversations: unqualified UPDATE as A', undo => true);
SELECT pg_temp.assert_fails(stmt, 'wellness: ' || stmt || ' as A should be refused', '{42501}')
  FROM unnest(ARRAY[
    'DELETE FROM wellness.users',
    'DELETE FROM wellness.conversations',
    'UPDATE wellness.messages SET content = ''x''',
    'DELETE FROM wellness.messages'
  ]) AS stmt;

-- The backend's columns (issue 11): the profile email comes from auth.users (setting it to
-- B's address would tell A whether B is registered), the assistant's replies and their
-- tokens_used, the conversation's message_count, and the server's timestamps.
SELECT pg_temp.assert_fails(stmt, 'wellness: A''s ' || stmt || ' should be refused', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE wellness.users SET email = ''wellness-b@example.com'' WHERE id = ''00000000-0000-4000-8000-0000000020a1''',
    'UPDATE wellness.users SET created_at = ''2000-01-01'' WHERE id = ''00000000-0000-4000-8000-0000000020a1''',
    'INSERT INTO wellness.messages (conversation_id, role, content) VALUES (''00000000-0000-4000-8000-00000020c0a1'', ''assistant'', ''You slept perfectly.'')',
    'INSERT INTO wellness.messages (conversation_id, role, content, tokens_used) VALUES (''00000000-0000-4000-8000-00000020c0a1'', ''user'', ''free tokens'', 0)',
    'INSERT INTO wellness.messages (conversation_id, role, content, created_at) VALUES (''00000000-0000-4000-8000-00000020c0a1'', ''user'', ''backdated'', ''2020-01-01'')',
    'UPDATE wellness.conversations SET message_count = 0 WHERE user_id = ''00000000-0000-4000-8000-0000000020a1''',
    'INSERT INTO wellness.conversations (user_id, module_name, message_count) VALUES (''00000000-0000-4000-8000-0000000020a1'', ''sleep'', 500)',
    'UPDATE wellness.wellness_entries SET created_at = ''2000-01-01'' WHERE user_id = ''00000000-0000-4000-8000-0000000020a1''',
    'UPDATE wellness.messages SET conversation_id = ''00000000-0000-4000-8000-00000020c0b1'' WHERE conversation_id = ''00000000-0000-4000-8000-00000020c0a1'''
  ]) AS stmt;

-- A cannot hand an own row to B: refused by a privilege, a policy or a CHECK. Without WHERE,
-- so that only the UPDATE policy's WITH CHECK can stop it.
SELECT pg_temp.assert_fails('UPDATE wellness.wellness_entries SET user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.wellness_entries: A handed an own row to B');
SELECT pg_temp.assert_fails('UPDATE wellness.module_progress SET user_id = ''00000000-0000-4000-8000-0000000020b1'', module_name = ''moved''', 'wellness.module_progress: A handed an own row to B');
SELECT pg_temp.assert_fails('UPDATE wellness.conversations SET user_id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.conversations: A handed an own row to B');
SELECT pg_temp.assert_fails('UPDATE wellness.users SET email = ''moved@example.com'', id = ''00000000-0000-4000-8000-0000000020b1''', 'wellness.users: A handed an own row to B');

-- INSERT of rows owned by B fails (refused by a privilege, a policy or a CHECK)
SELECT pg_temp.assert_fails('INSERT INTO wellness.users (id, email) VALUES (''00000000-0000-4000-8000-0000000020b1'', ''x@example.com'')', 'wellness.users: A inserted a row for B');
SELECT pg_temp.assert_fails('INSERT INTO wellness.wellness_entries (user_id, date) VALUES (''00000000-0000-4000-8000-0000000020b1'', CURRENT_DATE - 5)', 'wellness.wellness_entries: A inserted a row for B');
SELECT pg_temp.assert_fails('INSERT INTO wellness.module_progress (user_id, module_name) VALUES (''00000000-0000-4000-8000-0000000020b1'', ''focus'')', 'wellness.module_progress: A inserted a row for B');
SELECT pg_temp.assert_fails('INSERT INTO wellness.conversations (user_id, module_name) VALUES (''00000000-0000-4000-8000-0000000020b1'', ''focus'')', 'wellness.conversations: A inserted a row for B');
SELECT pg_temp.assert_fails('INSERT INTO wellness.messages (conversation_id, role, content) VALUES (''00000000-0000-4000-8000-00000020c0b1'', ''user'', ''x'')', 'wellness.messages: A inserted into B''s conversation');

-- functions: own data only
DO $$
DECLARE raised boolean;
BEGIN
    ASSERT (SELECT entries_count FROM wellness.get_wellness_stats('00000000-0000-4000-8000-0000000020a1', 30)) = 2,
        'get_wellness_stats: A should count 2 own entries';
    ASSERT (SELECT streak FROM wellness.get_wellness_streak('00000000-0000-4000-8000-0000000020a1')) = 2,
        'get_wellness_streak: A should have a streak of 2';
    ASSERT (SELECT total_entries FROM wellness.get_wellness_streak('00000000-0000-4000-8000-0000000020a1')) = 2,
        'get_wellness_streak: A should have 2 entries';

    raised := false;
    BEGIN
        PERFORM wellness.get_wellness_stats('00000000-0000-4000-8000-0000000020b1', 30);
    EXCEPTION WHEN insufficient_privilege THEN raised := true;
    END;
    ASSERT raised, 'get_wellness_stats: A read B''s statistics';

    raised := false;
    BEGIN
        PERFORM wellness.get_wellness_streak('00000000-0000-4000-8000-0000000020b1');
    EXCEPTION WHEN insufficient_privilege THEN raised := true;
    END;
    ASSERT raised, 'get_wellness_streak: A read B''s streak';
END $$;

-- The policies refuse a hand-over by themselves too (issue 16): with the owner column made
-- updatable for a moment (a grant a later migration might widen; the whole script is rolled
-- back), A still cannot give its rows to B. Catches a policy's WITH CHECK weakened behind
-- the column grants, which the hand-over checks above cannot see.
RESET ROLE;
GRANT UPDATE (id) ON wellness.users TO authenticated;
GRANT UPDATE (user_id) ON wellness.wellness_entries, wellness.module_progress,
    wellness.conversations TO authenticated;
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-0000000020a1');
SELECT pg_temp.assert_fails(stmt, 'wellness: A''s ' || stmt || ' got past the policy', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE wellness.users SET id = ''00000000-0000-4000-8000-0000000020b1''',
    'UPDATE wellness.wellness_entries SET user_id = ''00000000-0000-4000-8000-0000000020b1''',
    'UPDATE wellness.module_progress SET user_id = ''00000000-0000-4000-8000-0000000020b1''',
    'UPDATE wellness.conversations SET user_id = ''00000000-0000-4000-8000-0000000020b1'''
  ]) AS stmt;
RESET ROLE;
REVOKE UPDATE (id) ON wellness.users FROM authenticated;
REVOKE UPDATE (user_id) ON wellness.wellness_entries, wellness.module_progress,
    wellness.conversations FROM authenticated;

-- ---------------------------------------------------------------- anon
SELECT pg_temp.act_as('anon');

SELECT pg_temp.anon_sees_nothing(ARRAY[
    'wellness.users',
    'wellness.wellness_entries',
    'wellness.module_progress',
    'wellness.conversations',
    'wellness.messages'
]);

DO $$
DECLARE raised boolean := false;
BEGIN
    ASSERT NOT has_function_privilege('anon', 'wellness.get_wellness_stats(uuid, integer)', 'EXECUTE'),
        'get_wellness_stats: anon must not have EXECUTE';
    ASSERT NOT has_function_privilege('anon', 'wellness.get_wellness_streak(uuid)', 'EXECUTE'),
        'get_wellness_streak: anon must not have EXECUTE';
    BEGIN
        PERFORM wellness.get_wellness_stats('00000000-0000-4000-8000-0000000020a1', 30);
    EXCEPTION WHEN insufficient_privilege THEN raised := true;
    END;
    ASSERT raised, 'get_wellness_stats: anon must not be able to execute it';
END $$;

-- ---------------------------------------------------------------- service_role
SELECT pg_temp.act_as('service_role');

-- The backend writes the assistant's replies, their token counts and the message counter.
SELECT pg_temp.assert_affects('INSERT INTO wellness.messages (conversation_id, role, content, tokens_used) VALUES (''00000000-0000-4000-8000-00000020c0a1'', ''assistant'', ''Try a wind-down routine.'', 42)', 1, 'wellness.messages: service_role should insert an assistant reply', undo => true);
SELECT pg_temp.assert_affects('UPDATE wellness.conversations SET message_count = 3 WHERE id = ''00000000-0000-4000-8000-00000020c0a1''', 1, 'wellness.conversations: service_role should set message_count', undo => true);

-- Counted among this script's rows only: the database may also hold seed data.
DO $$
DECLARE
    a constant uuid := '00000000-0000-4000-8000-0000000020a1';
    b constant uuid := '00000000-0000-4000-8000-0000000020b1';
BEGIN
    ASSERT (SELECT count(*) FROM wellness.users WHERE id IN (a, b)) = 2, 'wellness.users: service_role should see A''s and B''s rows';
    ASSERT (SELECT count(*) FROM wellness.wellness_entries WHERE user_id IN (a, b)) = 3, 'wellness.wellness_entries: service_role should see A''s and B''s 3 rows';
    ASSERT (SELECT count(*) FROM wellness.module_progress WHERE user_id IN (a, b)) = 2, 'wellness.module_progress: service_role should see A''s and B''s rows';
    ASSERT (SELECT count(*) FROM wellness.conversations WHERE user_id IN (a, b)) = 2, 'wellness.conversations: service_role should see A''s and B''s rows';
    ASSERT (SELECT count(*) FROM wellness.messages
             WHERE conversation_id IN ('00000000-0000-4000-8000-00000020c0a1', '00000000-0000-4000-8000-00000020c0b1')) = 4,
        'wellness.messages: service_role should see the 4 rows of A''s and B''s conversations';
    ASSERT (SELECT entries_count FROM wellness.get_wellness_stats(b)) = 1,
        'get_wellness_stats: service_role should read B''s statistics';
END $$;

RESET ROLE;
