-- RLS behaviour test for the counsel domain. Run as a superuser on a database at head,
-- inside one transaction that the harness rolls back (no BEGIN/COMMIT here).
-- User A = c0c50000-0000-4000-8000-00000000000a, user B = c0c50000-0000-4000-8000-00000000000b.
-- Correct on an empty database and on one holding seed data: A's and anon's counts are
-- totals (seeded rows must be as invisible as B's), service_role counts A's and B's rows.

INSERT INTO auth.users (id, email) VALUES
    ('c0c50000-0000-4000-8000-00000000000a', 'counsel-a@example.com'),
    ('c0c50000-0000-4000-8000-00000000000b', 'counsel-b@example.com');

-- updated_at set in the past so the triggers' effect is visible inside this transaction
INSERT INTO counsel.users (id, email, full_name, coaching_goals, updated_at) VALUES
    ('c0c50000-0000-4000-8000-00000000000a', 'Counsel-A@example.com', 'Member A', '{clarity}', '2020-01-01'),
    ('c0c50000-0000-4000-8000-00000000000b', 'counsel-b@example.com', 'Member B', '{balance}', '2020-01-01');

INSERT INTO counsel.coaching_conversations (id, user_id, session_type, updated_at) VALUES
    ('c0c51000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'onboarding', '2020-01-01'),
    ('c0c51000-0000-4000-8000-0000000000b1', 'c0c50000-0000-4000-8000-00000000000b', 'check_in', '2020-01-01');

INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content) VALUES
    ('c0c51000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'user', 'hi, I am A'),
    ('c0c51000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'coach', 'welcome, A'),
    ('c0c51000-0000-4000-8000-0000000000b1', 'c0c50000-0000-4000-8000-00000000000b', 'user', 'hi, I am B'),
    ('c0c51000-0000-4000-8000-0000000000b1', 'c0c50000-0000-4000-8000-00000000000b', 'coach', 'welcome, B');

INSERT INTO counsel.progress_tracking (id, user_id, title, progress_data, updated_at) VALUES
    ('c0c52000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'Morning routine', '{"days": 3}', '2020-01-01'),
    ('c0c52000-0000-4000-8000-0000000000b1', 'c0c50000-0000-4000-8000-00000000000b', 'Evening walk', '{"days": 5}', '2020-01-01');

INSERT INTO counsel.personality_insights (id, user_id, insight_type, insight_text, astrological_basis, updated_at) VALUES
    ('c0c53000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'strength', 'Steady', '{"sun": "taurus"}', '2020-01-01'),
    ('c0c53000-0000-4000-8000-0000000000b1', 'c0c50000-0000-4000-8000-00000000000b', 'motivation', 'Curious', '{"sun": "gemini"}', '2020-01-01');

-- email is extensions.citext: its UNIQUE constraint ignores case
INSERT INTO auth.users (id, email) VALUES ('c0c50000-0000-4000-8000-00000000000c', 'counsel-c@example.com');
DO $$
DECLARE raised boolean := false;
BEGIN
    BEGIN
        INSERT INTO counsel.users (id, email) VALUES ('c0c50000-0000-4000-8000-00000000000c', 'COUNSEL-B@Example.COM');
    EXCEPTION WHEN unique_violation THEN raised := true;
    END;
    ASSERT raised, 'counsel.users: email uniqueness should ignore case (citext)';
END $$;

-- ---------------------------------------------------------------- authenticated as A
SELECT pg_temp.act_as('authenticated', 'c0c50000-0000-4000-8000-00000000000a');

DO $$
DECLARE a constant uuid := 'c0c50000-0000-4000-8000-00000000000a';
BEGIN
    ASSERT (SELECT count(*) FROM counsel.users) = 1, 'counsel.users: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM counsel.users WHERE id = a) = 1, 'counsel.users: A should see its own row';
    ASSERT (SELECT count(*) FROM counsel.coaching_conversations) = 1,
        'counsel.coaching_conversations: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM counsel.coaching_conversations WHERE user_id = a) = 1,
        'counsel.coaching_conversations: A should see its own row';
    ASSERT (SELECT count(*) FROM counsel.coaching_messages) = 2,
        'counsel.coaching_messages: authenticated A should see 2 rows';
    ASSERT (SELECT count(*) FROM counsel.coaching_messages WHERE user_id = a) = 2,
        'counsel.coaching_messages: A should see only its own rows';
    ASSERT (SELECT count(*) FROM counsel.progress_tracking) = 1,
        'counsel.progress_tracking: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM counsel.progress_tracking WHERE user_id = a) = 1,
        'counsel.progress_tracking: A should see its own row';
    ASSERT (SELECT count(*) FROM counsel.personality_insights) = 1,
        'counsel.personality_insights: authenticated A should see 1 row';
    ASSERT (SELECT count(*) FROM counsel.personality_insights WHERE user_id = a) = 1,
        'counsel.personality_insights: A should see its own row';
END $$;

-- UPDATE / DELETE of B's rows affect nothing; A's own rows can be updated (triggers run).
SELECT pg_temp.assert_no_rows_affected('UPDATE counsel.users SET full_name = ''x'' WHERE id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.users: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM counsel.users WHERE id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.users: A deleted B''s row');

SELECT pg_temp.assert_no_rows_affected('UPDATE counsel.coaching_conversations SET status = ''completed'' WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.coaching_conversations: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM counsel.coaching_conversations WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.coaching_conversations: A deleted B''s row');

SELECT pg_temp.assert_no_rows_affected('UPDATE counsel.coaching_messages SET content = ''x'' WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.coaching_messages: A updated B''s rows', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM counsel.coaching_messages WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.coaching_messages: A deleted B''s rows', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE counsel.progress_tracking SET progress_percent = 100 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.progress_tracking: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM counsel.progress_tracking WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.progress_tracking: A deleted B''s row');

SELECT pg_temp.assert_no_rows_affected('UPDATE counsel.personality_insights SET accuracy_rating = 1 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.personality_insights: A updated B''s row');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM counsel.personality_insights WHERE user_id = ''c0c50000-0000-4000-8000-00000000000b''', 'counsel.personality_insights: A deleted B''s row', or_refused => true);

-- A's own rows
SELECT pg_temp.assert_affects('UPDATE counsel.users SET full_name = ''Member A2'', birth_place = ''Lisbon'', coaching_goals = ''{clarity,focus}'' WHERE id = ''c0c50000-0000-4000-8000-00000000000a''', 1, 'counsel.users: A should update its own profile fields');
SELECT pg_temp.assert_affects('UPDATE counsel.coaching_conversations SET satisfaction_rating = 5 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''', 1, 'counsel.coaching_conversations: A should update its own row');
SELECT pg_temp.assert_affects('UPDATE counsel.progress_tracking SET progress_percent = 40 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''', 1, 'counsel.progress_tracking: A should update its own row');
SELECT pg_temp.assert_affects('UPDATE counsel.personality_insights SET accuracy_rating = 4 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''', 1, 'counsel.personality_insights: A should update its own row');
-- messages are append-only: no client UPDATE at all
SELECT pg_temp.assert_fails('UPDATE counsel.coaching_messages SET content = ''edited'' WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''', 'counsel.coaching_messages: messages should not be updatable', '{42501}');

-- The updated_at triggers ran for A's updates.
DO $$
BEGIN
    ASSERT (SELECT updated_at FROM counsel.users) > '2020-01-02', 'counsel.users: updated_at trigger did not run';
    ASSERT (SELECT updated_at FROM counsel.coaching_conversations) > '2020-01-02',
        'counsel.coaching_conversations: updated_at trigger did not run';
    ASSERT (SELECT updated_at FROM counsel.progress_tracking) > '2020-01-02',
        'counsel.progress_tracking: updated_at trigger did not run';
    ASSERT (SELECT updated_at FROM counsel.personality_insights) > '2020-01-02',
        'counsel.personality_insights: updated_at trigger did not run';
END $$;

-- UPDATE / DELETE without WHERE: only the UPDATE/DELETE policies apply (no SELECT policy
-- filters the rows), so these counts catch a too-broad UPDATE or DELETE policy. Each runs
-- in a subtransaction that is rolled back.
SELECT pg_temp.assert_affects('UPDATE ' || tbl || ' SET ' || set_clause, want_update,
                              tbl || ': UPDATE by A without WHERE', undo => true),
       pg_temp.assert_affects('DELETE FROM ' || tbl, want_delete,
                              tbl || ': DELETE by A without WHERE', undo => true)
  FROM (VALUES
    ('counsel.users', 'full_name = ''x''', 1, 1),
    ('counsel.coaching_conversations', 'title = ''x''', 1, 1),
    ('counsel.progress_tracking', 'title = ''x''', 1, 1)
  ) AS v(tbl, set_clause, want_update, want_delete);
SELECT pg_temp.assert_affects('UPDATE counsel.personality_insights SET accuracy_rating = 2', 1,
                              'counsel.personality_insights: UPDATE by A without WHERE', undo => true);
SELECT pg_temp.assert_fails(stmt, 'counsel: ' || stmt || ' by A should be refused', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE counsel.coaching_messages SET content = ''x''',
    'DELETE FROM counsel.coaching_messages',
    'UPDATE counsel.personality_insights SET coaching_language = ''x''',
    'DELETE FROM counsel.personality_insights'
  ]) AS stmt;


-- INSERT of rows owned by B fails (refused by a privilege, a policy or a CHECK); so does a
-- message of A's in B's conversation (by the foreign key, and by nothing else).
SELECT pg_temp.assert_fails('INSERT INTO counsel.users (id, email) VALUES (''c0c50000-0000-4000-8000-00000000000b'', ''spoof@example.com'')', 'counsel.users: insert of B''s row should fail');
-- without the email (not a client's column), so the policy is what refuses it
SELECT pg_temp.assert_fails('INSERT INTO counsel.users (id, full_name) VALUES (''c0c50000-0000-4000-8000-00000000000b'', ''spoof'')', 'counsel.users: A created a profile for B past the policy', '{42501}');
SELECT pg_temp.assert_fails('INSERT INTO counsel.coaching_conversations (user_id) VALUES (''c0c50000-0000-4000-8000-00000000000b'')', 'counsel.coaching_conversations: insert for B should fail');
SELECT pg_temp.assert_fails('INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content) VALUES (''c0c51000-0000-4000-8000-0000000000b1'', ''c0c50000-0000-4000-8000-00000000000b'', ''user'', ''spoofed'')', 'counsel.coaching_messages: insert for B should fail');
SELECT pg_temp.assert_fails('INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content) VALUES (''c0c51000-0000-4000-8000-0000000000b1'', ''c0c50000-0000-4000-8000-00000000000a'', ''user'', ''spoofed'')', 'counsel.coaching_messages: A''s message in B''s conversation should fail', sqlstates => '{23503}');
SELECT pg_temp.assert_fails('INSERT INTO counsel.progress_tracking (user_id, title) VALUES (''c0c50000-0000-4000-8000-00000000000b'', ''spoofed'')', 'counsel.progress_tracking: insert for B should fail');
SELECT pg_temp.assert_fails('INSERT INTO counsel.personality_insights (user_id, insight_type, insight_text) VALUES (''c0c50000-0000-4000-8000-00000000000b'', ''strength'', ''spoofed'')', 'counsel.personality_insights: insert for B should fail');

-- The backend's rows and columns (issue 11): the coach's and the system's messages and the
-- log's coaching metadata, the AI-generated insights (only their accuracy rating is the
-- user's), the AI-derived personality profile, the onboarding status, server-timed columns,
-- and the email (from auth.users: a chosen one would probe who is registered, in any case).
-- The coaching log is append-only. A cannot hand its rows to B either.
SELECT pg_temp.assert_fails(stmt, 'counsel: A''s ' || stmt || ' should be refused', '{42501}')
  FROM unnest(ARRAY[
    'INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content) VALUES (''c0c51000-0000-4000-8000-0000000000a1'', ''c0c50000-0000-4000-8000-00000000000a'', ''coach'', ''You have completed onboarding.'')',
    'INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content) VALUES (''c0c51000-0000-4000-8000-0000000000a1'', ''c0c50000-0000-4000-8000-00000000000a'', ''system'', ''Session approved.'')',
    'INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content, metadata) VALUES (''c0c51000-0000-4000-8000-0000000000a1'', ''c0c50000-0000-4000-8000-00000000000a'', ''user'', ''x'', ''{"crisis_reviewed": true}'')',
    'INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content, created_at) VALUES (''c0c51000-0000-4000-8000-0000000000a1'', ''c0c50000-0000-4000-8000-00000000000a'', ''user'', ''backdated'', ''2020-01-01'')',
    'DELETE FROM counsel.coaching_messages WHERE sender = ''coach''',
    'DELETE FROM counsel.coaching_messages WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'INSERT INTO counsel.personality_insights (user_id, insight_type, insight_text, confidence_score, is_disclosed, disclosed_at) VALUES (''c0c50000-0000-4000-8000-00000000000a'', ''strength'', ''Born leader'', 0.99, true, now())',
    'UPDATE counsel.personality_insights SET insight_text = ''Born leader'', confidence_score = 0.99 WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.personality_insights SET is_disclosed = true, disclosed_at = now() WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'DELETE FROM counsel.personality_insights WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.users SET email = ''counsel-b@example.com'' WHERE id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.users SET personality_profile = ''{"type":"hero"}'' WHERE id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.users SET onboarding_status = ''completed'' WHERE id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.coaching_conversations SET duration_seconds = 99999, ended_at = now() WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.progress_tracking SET personality_metrics = ''{"grit": 10}'' WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    'UPDATE counsel.progress_tracking SET achieved_at = ''2000-01-01'' WHERE user_id = ''c0c50000-0000-4000-8000-00000000000a''',
    -- hand your row to another user
    'UPDATE counsel.users SET id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.coaching_conversations SET user_id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.progress_tracking SET user_id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.personality_insights SET user_id = ''c0c50000-0000-4000-8000-00000000000b'''
  ]) AS stmt;

-- A user without a profile creates it: the email comes from its access token (issued by the
-- auth server from auth.users, here claims as PostgREST sets them), never chosen
SELECT pg_temp.act_as('authenticated', 'c0c50000-0000-4000-8000-00000000000c');
SELECT set_config('request.jwt.claims', '{"sub": "c0c50000-0000-4000-8000-00000000000c", "role": "authenticated", "email": "counsel-c@example.com"}', true);
SELECT pg_temp.assert_fails('INSERT INTO counsel.users (id, email) VALUES (''c0c50000-0000-4000-8000-00000000000c'', ''COUNSEL-B@Example.COM'')', 'counsel.users: C chose its profile email', '{42501}');
DO $$ BEGIN
    INSERT INTO counsel.users (id, full_name, birth_date)
    VALUES ('c0c50000-0000-4000-8000-00000000000c', 'Member C', '1990-04-01');
    ASSERT (SELECT email::text FROM counsel.users) = 'counsel-c@example.com',
        'counsel.users: C''s profile email should come from its token';
END $$;
SELECT pg_temp.act_as('authenticated', 'c0c50000-0000-4000-8000-00000000000a');

-- A can add to its own data
INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content)
VALUES ('c0c51000-0000-4000-8000-0000000000a1', 'c0c50000-0000-4000-8000-00000000000a', 'user', 'one more');
INSERT INTO counsel.progress_tracking (user_id, title, tracking_type)
VALUES ('c0c50000-0000-4000-8000-00000000000a', 'First milestone', 'milestone');

DO $$
BEGIN
    ASSERT (SELECT count(*) FROM counsel.coaching_messages) = 3, 'counsel.coaching_messages: A should now see 3 rows';
    ASSERT (SELECT count(*) FROM counsel.progress_tracking) = 2, 'counsel.progress_tracking: A should now see 2 rows';
END $$;

-- The policies refuse a hand-over by themselves too (issue 16): with the owner column made
-- updatable for a moment (a grant a later migration might widen; the whole script is rolled
-- back), A still cannot give its rows to B. Catches a policy's WITH CHECK weakened behind
-- the column grants, which the hand-over checks above cannot see.
RESET ROLE;
GRANT UPDATE (id) ON counsel.users TO authenticated;
GRANT UPDATE (user_id) ON counsel.coaching_conversations, counsel.progress_tracking,
    counsel.personality_insights TO authenticated;
SELECT pg_temp.act_as('authenticated', 'c0c50000-0000-4000-8000-00000000000a');
SELECT pg_temp.assert_fails(stmt, 'counsel: A''s ' || stmt || ' got past the policy', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE counsel.users SET id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.coaching_conversations SET user_id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.progress_tracking SET user_id = ''c0c50000-0000-4000-8000-00000000000b''',
    'UPDATE counsel.personality_insights SET user_id = ''c0c50000-0000-4000-8000-00000000000b'''
  ]) AS stmt;
RESET ROLE;
REVOKE UPDATE (id) ON counsel.users FROM authenticated;
REVOKE UPDATE (user_id) ON counsel.coaching_conversations, counsel.progress_tracking,
    counsel.personality_insights FROM authenticated;

-- ---------------------------------------------------------------- anon
SELECT pg_temp.act_as('anon');

SELECT pg_temp.anon_sees_nothing(ARRAY[
    'counsel.users',
    'counsel.coaching_conversations',
    'counsel.coaching_messages',
    'counsel.progress_tracking',
    'counsel.personality_insights'
]);

-- ---------------------------------------------------------------- service_role
SELECT pg_temp.act_as('service_role');

-- The backend writes the coach's replies with their metadata, and the insights.
SELECT pg_temp.assert_affects('INSERT INTO counsel.coaching_messages (conversation_id, user_id, sender, content, metadata) VALUES (''c0c51000-0000-4000-8000-0000000000a1'', ''c0c50000-0000-4000-8000-00000000000a'', ''coach'', ''Great progress.'', ''{"model":"x"}'')', 1, 'counsel.coaching_messages: service_role should insert a coach reply', undo => true);
SELECT pg_temp.assert_affects('INSERT INTO counsel.personality_insights (user_id, insight_type, insight_text, confidence_score) VALUES (''c0c50000-0000-4000-8000-00000000000a'', ''growth_area'', ''Patience'', 0.6)', 1, 'counsel.personality_insights: service_role should insert an insight', undo => true);

-- Counted among this script's rows only: the database may also hold seed data.
DO $$
DECLARE
    a constant uuid := 'c0c50000-0000-4000-8000-00000000000a';
    b constant uuid := 'c0c50000-0000-4000-8000-00000000000b';
BEGIN
    ASSERT (SELECT count(*) FROM counsel.users WHERE id IN (a, b)) = 2,
        'counsel.users: service_role should see A''s and B''s rows';
    ASSERT (SELECT count(*) FROM counsel.coaching_conversations WHERE user_id IN (a, b)) = 2,
        'counsel.coaching_conversations: service_role should see A''s and B''s rows';
    ASSERT (SELECT count(*) FROM counsel.coaching_messages WHERE user_id IN (a, b)) = 5,
        'counsel.coaching_messages: service_role should see A''s 3 and B''s 2 rows';
    ASSERT (SELECT count(*) FROM counsel.progress_tracking WHERE user_id IN (a, b)) = 3,
        'counsel.progress_tracking: service_role should see A''s 2 and B''s 1 rows';
    ASSERT (SELECT count(*) FROM counsel.personality_insights WHERE user_id IN (a, b)) = 2,
        'counsel.personality_insights: service_role should see A''s and B''s rows';
END $$;

RESET ROLE;
