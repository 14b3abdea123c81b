-- RLS behaviour of the partner domain. Run as a superuser after every migration, inside one
-- transaction that the harness rolls back (no BEGIN/COMMIT here).
--
-- Two separate relationships: RA = A (partner_a) + A2 (partner_b), RB = B (partner_a) + B2
-- (partner_b). Every table gets rows for both. Checks: A and A2 see exactly RA's rows (and
-- each only their own message suggestion), B sees none of RA's rows, writes to the other
-- relationship affect nothing or are refused, anon sees nothing, service_role sees all.
-- Correct on an empty database and on one holding seed data: the members' and anon's counts
-- are totals (seeded rows must be as invisible as the other relationship's), service_role's
-- and the superuser's count RA's and RB's rows.

-- users: A 00..a001, A2 00..a002, B 00..b001, B2 00..b002
INSERT INTO auth.users (id, email) VALUES
    ('00000000-0000-4000-8000-00000000a001', 'partner-a@example.com'),
    ('00000000-0000-4000-8000-00000000a002', 'partner-a2@example.com'),
    ('00000000-0000-4000-8000-00000000b001', 'partner-b@example.com'),
    ('00000000-0000-4000-8000-00000000b002', 'partner-b2@example.com');

-- relationships (relationship_members rows are created by trigger_sync_relationship_members)
INSERT INTO partner.relationships (id, partner_a_id, partner_b_id) VALUES
    ('10000000-0000-4000-8000-00000000000a',
     '00000000-0000-4000-8000-00000000a001', '00000000-0000-4000-8000-00000000a002'),
    ('10000000-0000-4000-8000-00000000000b',
     '00000000-0000-4000-8000-00000000b001', '00000000-0000-4000-8000-00000000b002');

INSERT INTO partner.partner_conversations (id, relationship_id) VALUES
    ('20000000-0000-4000-8000-00000000000a', '10000000-0000-4000-8000-00000000000a'),
    ('20000000-0000-4000-8000-00000000000b', '10000000-0000-4000-8000-00000000000b');

INSERT INTO partner.partner_messages (id, conversation_id, sender_id, content, sent_at) VALUES
    ('30000000-0000-4000-8000-0000000000a1', '20000000-0000-4000-8000-00000000000a',
     'partner_a', 'Can we talk tonight?', '2024-01-01 10:00+00'),
    ('30000000-0000-4000-8000-0000000000a2', '20000000-0000-4000-8000-00000000000a',
     'partner_b', 'Sure, after dinner.', '2024-01-01 10:05+00'),
    ('30000000-0000-4000-8000-0000000000b1', '20000000-0000-4000-8000-00000000000b',
     'partner_a', 'Running late.', '2024-01-01 11:00+00'),
    ('30000000-0000-4000-8000-0000000000b2', '20000000-0000-4000-8000-00000000000b',
     'partner_b', 'No problem.', '2024-01-01 11:05+00');

INSERT INTO partner.partner_messaging_preferences (id, relationship_id, partner_id) VALUES
    ('40000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a', 'partner_a'),
    ('40000000-0000-4000-8000-0000000000a2', '10000000-0000-4000-8000-00000000000a', 'partner_b'),
    ('40000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b', 'partner_a'),
    ('40000000-0000-4000-8000-0000000000b2', '10000000-0000-4000-8000-00000000000b', 'partner_b');

INSERT INTO partner.message_suggestions
    (id, conversation_id, sender_id, original_message, risk_assessment,
     primary_suggestion, suggestion_rationale) VALUES
    ('50000000-0000-4000-8000-0000000000a1', '20000000-0000-4000-8000-00000000000a', 'partner_a',
     'You never listen.', 'risky', 'I feel unheard lately.', 'I-statement'),
    ('50000000-0000-4000-8000-0000000000a2', '20000000-0000-4000-8000-00000000000a', 'partner_b',
     'Whatever.', 'risky', 'I need a minute.', 'name the need'),
    ('50000000-0000-4000-8000-0000000000b1', '20000000-0000-4000-8000-00000000000b', 'partner_a',
     'You always do this.', 'high_risk', 'This keeps hurting me.', 'avoid absolutes'),
    ('50000000-0000-4000-8000-0000000000b2', '20000000-0000-4000-8000-00000000000b', 'partner_b',
     'Fine.', 'safe', 'Okay, thanks.', 'acknowledge');

INSERT INTO partner.escalation_events (id, relationship_id, source, severity) VALUES
    ('60000000-0000-4000-8000-00000000000a', '10000000-0000-4000-8000-00000000000a',
     'partner_messaging', 'medium'),
    ('60000000-0000-4000-8000-00000000000b', '10000000-0000-4000-8000-00000000000b',
     'partner_messaging', 'high');

DO $$
BEGIN
    ASSERT (select count(*) from partner.relationship_members
            where relationship_id in ('10000000-0000-4000-8000-00000000000a',
                                      '10000000-0000-4000-8000-00000000000b')) = 4,
        'relationship_members: the trigger should have created 2 members per relationship';
    ASSERT (select message_count from partner.partner_conversations
            where id = '20000000-0000-4000-8000-00000000000a') = 2,
        'partner_conversations: message_count should count the 2 messages';
END $$;

-- =====================================================================
-- authenticated as A (partner_a of RA)
-- =====================================================================
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a001');

DO $$
BEGIN
    ASSERT (select count(*) from partner.relationships) = 1,
        'partner.relationships: authenticated A should see 1 row';
    ASSERT (select count(*) from partner.relationships
            where id = '10000000-0000-4000-8000-00000000000a') = 1,
        'partner.relationships: A should see RA';
    ASSERT (select count(*) from partner.relationship_members) = 2,
        'partner.relationship_members: authenticated A should see 2 rows (A and A2)';
    ASSERT (select count(*) from partner.relationship_members
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 2,
        'partner.relationship_members: A should see only RA''s members';
    ASSERT (select count(*) from partner.partner_conversations) = 1,
        'partner.partner_conversations: authenticated A should see 1 row';
    ASSERT (select count(*) from partner.partner_conversations
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 1,
        'partner.partner_conversations: A should see RA''s conversation';
    ASSERT (select count(*) from partner.partner_messages) = 2,
        'partner.partner_messages: authenticated A should see 2 rows';
    ASSERT (select count(*) from partner.partner_messages
            where conversation_id = '20000000-0000-4000-8000-00000000000a') = 2,
        'partner.partner_messages: A should see only RA''s messages';
    ASSERT (select count(*) from partner.partner_messaging_preferences) = 2,
        'partner.partner_messaging_preferences: authenticated A should see 2 rows';
    ASSERT (select count(*) from partner.partner_messaging_preferences
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 2,
        'partner.partner_messaging_preferences: A should see only RA''s preferences';
    ASSERT (select count(*) from partner.message_suggestions) = 1,
        'partner.message_suggestions: authenticated A should see 1 row (its own)';
    ASSERT (select count(*) from partner.message_suggestions
            where id = '50000000-0000-4000-8000-0000000000a1') = 1,
        'partner.message_suggestions: A should see its own suggestion, not A2''s';
    ASSERT (select count(*) from partner.escalation_events) = 1,
        'partner.escalation_events: authenticated A should see 1 row';
    ASSERT (select count(*) from partner.escalation_events
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 1,
        'partner.escalation_events: A should see only RA''s events';
END $$;

-- A cannot change RB's rows, nor A2's private or own-partner rows
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.relationships SET updated_at = now() WHERE id = ''10000000-0000-4000-8000-00000000000b''', 'partner.relationships: A updated RB', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.relationships WHERE id = ''10000000-0000-4000-8000-00000000000b''', 'partner.relationships: A deleted RB', or_refused => true);
-- relationships are read-only for members, their own included
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.relationships SET partner_b_id = ''00000000-0000-4000-8000-00000000b001'' WHERE id = ''10000000-0000-4000-8000-00000000000a''', 'partner.relationships: A changed its own relationship''s partner', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_conversations SET is_active = false WHERE id = ''20000000-0000-4000-8000-00000000000b''', 'partner.partner_conversations: A updated RB''s conversation');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.partner_conversations WHERE id = ''20000000-0000-4000-8000-00000000000b''', 'partner.partner_conversations: A deleted RB''s conversation', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.partner_conversations WHERE id = ''20000000-0000-4000-8000-00000000000a''', 'partner.partner_conversations: a member hard-deleted the shared conversation', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_messages SET status = ''read'' WHERE id = ''30000000-0000-4000-8000-0000000000b1''', 'partner.partner_messages: A updated RB''s message');
-- no client DELETE on messages at all: refused outright, or 0 rows
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.partner_messages WHERE id = ''30000000-0000-4000-8000-0000000000b1''', 'partner.partner_messages: A deleted RB''s message', or_refused => true);

SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_messaging_preferences SET suggestion_mode = ''off'' WHERE id = ''40000000-0000-4000-8000-0000000000b1''', 'partner.partner_messaging_preferences: A updated RB''s preferences');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.partner_messaging_preferences WHERE id = ''40000000-0000-4000-8000-0000000000b1''', 'partner.partner_messaging_preferences: A deleted RB''s preferences');
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_messaging_preferences SET suggestion_mode = ''off'' WHERE id = ''40000000-0000-4000-8000-0000000000a2''', 'partner.partner_messaging_preferences: A updated its partner A2''s preferences');

SELECT pg_temp.assert_no_rows_affected('UPDATE partner.message_suggestions SET user_action = ''ignored'' WHERE id = ''50000000-0000-4000-8000-0000000000b1''', 'partner.message_suggestions: A updated B''s suggestion');
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.message_suggestions WHERE id = ''50000000-0000-4000-8000-0000000000b1''', 'partner.message_suggestions: A deleted B''s suggestion', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.message_suggestions SET user_action = ''ignored'' WHERE id = ''50000000-0000-4000-8000-0000000000a2''', 'partner.message_suggestions: A updated its partner A2''s suggestion');

SELECT pg_temp.assert_no_rows_affected('UPDATE partner.escalation_events SET severity = ''low'' WHERE id = ''60000000-0000-4000-8000-00000000000b''', 'partner.escalation_events: A updated RB''s event', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.escalation_events WHERE id = ''60000000-0000-4000-8000-00000000000b''', 'partner.escalation_events: A deleted RB''s event', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.escalation_events WHERE id = ''60000000-0000-4000-8000-00000000000a''', 'partner.escalation_events: a member deleted its own relationship''s event', or_refused => true);

-- relationship_members is read-only to clients: refused outright, or 0 rows
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.relationship_members SET role = role WHERE relationship_id = ''10000000-0000-4000-8000-00000000000b''', 'partner.relationship_members: A updated RB''s members', or_refused => true);
SELECT pg_temp.assert_no_rows_affected('DELETE FROM partner.relationship_members WHERE relationship_id = ''10000000-0000-4000-8000-00000000000b''', 'partner.relationship_members: A deleted RB''s members', or_refused => true);

-- UPDATE / DELETE without WHERE: only the UPDATE/DELETE policies pick the rows (no SELECT
-- policy filters them), so these counts catch a too-broad one (issue 16: each of these
-- policies' USING could be made `true` unnoticed). Each runs in a subtransaction that is
-- rolled back.
SELECT pg_temp.assert_affects('UPDATE partner.partner_conversations SET is_active = true', 1,
                              'partner.partner_conversations: UPDATE by A without WHERE', undo => true);
SELECT pg_temp.assert_affects('UPDATE partner.message_suggestions SET user_action = ''ignored''', 1,
                              'partner.message_suggestions: UPDATE by A without WHERE', undo => true);
SELECT pg_temp.assert_affects('DELETE FROM partner.partner_messaging_preferences', 1,
                              'partner.partner_messaging_preferences: DELETE by A without WHERE', undo => true);

-- A cannot insert rows owned by RB/B, nor act as its partner A2 (refused by a privilege, a
-- policy or a CHECK)
SELECT pg_temp.assert_fails('INSERT INTO partner.relationships (partner_a_id, partner_b_id) VALUES (''00000000-0000-4000-8000-00000000b001'', ''00000000-0000-4000-8000-00000000a001'')', 'partner.relationships: A inserted a relationship');
SELECT pg_temp.assert_fails('INSERT INTO partner.relationship_members (relationship_id, user_id, role) VALUES (''10000000-0000-4000-8000-00000000000b'', ''00000000-0000-4000-8000-00000000a001'', ''partner_a'')', 'partner.relationship_members: A joined RB');
SELECT pg_temp.assert_fails('INSERT INTO partner.partner_conversations (relationship_id) VALUES (''10000000-0000-4000-8000-00000000000b'')', 'partner.partner_conversations: A inserted a conversation for RB');
SELECT pg_temp.assert_fails('INSERT INTO partner.partner_messages (conversation_id, sender_id, content) VALUES (''20000000-0000-4000-8000-00000000000b'', ''partner_a'', ''intrusion'')', 'partner.partner_messages: A inserted a message into RB''s conversation');
SELECT pg_temp.assert_fails('INSERT INTO partner.partner_messages (conversation_id, sender_id, content) VALUES (''20000000-0000-4000-8000-00000000000a'', ''partner_b'', ''impersonation'')', 'partner.partner_messages: A sent a message as its partner A2');
-- nor afterwards: re-attributing its own message, rewriting A2's, hard-deleting either
SELECT pg_temp.assert_fails('UPDATE partner.partner_messages SET sender_id = ''partner_b'' WHERE id = ''30000000-0000-4000-8000-0000000000a1''', 'partner.partner_messages: A re-attributed its message to its partner A2');
SELECT pg_temp.assert_fails('UPDATE partner.partner_messages SET content = ''rewritten'' WHERE id = ''30000000-0000-4000-8000-0000000000a2''', 'partner.partner_messages: A rewrote its partner A2''s message');
SELECT pg_temp.assert_fails('DELETE FROM partner.partner_messages WHERE id = ''30000000-0000-4000-8000-0000000000a2''', 'partner.partner_messages: A hard-deleted a message of the shared conversation');
SELECT pg_temp.assert_fails('INSERT INTO partner.partner_messaging_preferences (relationship_id, partner_id) VALUES (''10000000-0000-4000-8000-00000000000b'', ''partner_a'')', 'partner.partner_messaging_preferences: A inserted preferences for RB');
SELECT pg_temp.assert_fails('INSERT INTO partner.message_suggestions (conversation_id, sender_id, original_message, risk_assessment, primary_suggestion, suggestion_rationale) VALUES (''20000000-0000-4000-8000-00000000000b'', ''partner_a'', ''x'', ''safe'', ''x'', ''x'')', 'partner.message_suggestions: A inserted a suggestion into RB''s conversation');
SELECT pg_temp.assert_fails('INSERT INTO partner.message_suggestions (conversation_id, sender_id, original_message, risk_assessment, primary_suggestion, suggestion_rationale) VALUES (''20000000-0000-4000-8000-00000000000a'', ''partner_b'', ''x'', ''safe'', ''x'', ''x'')', 'partner.message_suggestions: A inserted a suggestion as its partner A2');
SELECT pg_temp.assert_fails('INSERT INTO partner.escalation_events (relationship_id, source, severity) VALUES (''10000000-0000-4000-8000-00000000000b'', ''conflict'', ''low'')', 'partner.escalation_events: A inserted an event for RB');

-- A's legitimate writes in RA succeed
DO $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO partner.partner_messages (id, conversation_id, sender_id, content, reply_to_id)
    VALUES ('30000000-0000-4000-8000-0000000000a3', '20000000-0000-4000-8000-00000000000a',
            'partner_a', 'See you at eight.', '30000000-0000-4000-8000-0000000000a2');
    ASSERT (select sent_at from partner.partner_messages
            where id = '30000000-0000-4000-8000-0000000000a3') = now(),
        'partner_messages: sent_at should be the server''s clock';
    ASSERT (select message_count from partner.partner_conversations
            where id = '20000000-0000-4000-8000-00000000000a') = 3,
        'partner_conversations: A''s message should be counted by the trigger';
    ASSERT (select last_message_preview from partner.partner_conversations
            where id = '20000000-0000-4000-8000-00000000000a') = 'See you at eight.',
        'partner_conversations: last_message_preview should be A''s message';

    UPDATE partner.partner_messages SET status = 'read', read_at = now()
        WHERE id = '30000000-0000-4000-8000-0000000000a2';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'partner.partner_messages: A should mark A2''s message as read';

    UPDATE partner.partner_messaging_preferences SET suggestion_mode = 'always'
        WHERE id = '40000000-0000-4000-8000-0000000000a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'partner.partner_messaging_preferences: A should update its own preferences';

    -- A answers Luna's suggestion: the response time is the server's
    UPDATE partner.message_suggestions
       SET user_action = 'accepted', final_message_id = '30000000-0000-4000-8000-0000000000a3'
     WHERE id = '50000000-0000-4000-8000-0000000000a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'partner.message_suggestions: A should respond to its own suggestion';
    ASSERT (select responded_at from partner.message_suggestions
            where id = '50000000-0000-4000-8000-0000000000a1') = now(),
        'partner.message_suggestions: responded_at should be the server''s clock';

    -- Luna's suggestions and escalation records come from the backend
    PERFORM pg_temp.act_as('service_role');
    INSERT INTO partner.message_suggestions
        (id, conversation_id, sender_id, original_message, risk_assessment,
         primary_suggestion, suggestion_rationale)
    VALUES ('50000000-0000-4000-8000-0000000000a3', '20000000-0000-4000-8000-00000000000a',
            'partner_a', 'Late again?', 'risky', 'I missed you.', 'soften start-up');
    INSERT INTO partner.escalation_events (id, relationship_id, source, severity)
    VALUES ('60000000-0000-4000-8000-0000000000a2', '10000000-0000-4000-8000-00000000000a',
            'conflict', 'low');
    PERFORM pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a001');

    ASSERT (select count(*) from partner.message_suggestions) = 2,
        'partner.message_suggestions: A should now see its 2 suggestions';
    ASSERT (select count(*) from partner.escalation_events) = 2,
        'partner.escalation_events: A should now see 2 events';
END $$;

-- =====================================================================
-- authenticated as A2 (partner_b of RA): sees RA's shared rows, only its own suggestion
-- =====================================================================
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a002');

DO $$
BEGIN
    ASSERT (select count(*) from partner.relationships
            where id = '10000000-0000-4000-8000-00000000000a') = 1
       AND (select count(*) from partner.relationships) = 1,
        'partner.relationships: authenticated A2 should see RA only';
    ASSERT (select count(*) from partner.relationship_members) = 2,
        'partner.relationship_members: authenticated A2 should see 2 rows';
    ASSERT (select count(*) from partner.partner_conversations) = 1,
        'partner.partner_conversations: authenticated A2 should see 1 row';
    ASSERT (select count(*) from partner.partner_messages
            where conversation_id = '20000000-0000-4000-8000-00000000000a') = 3
       AND (select count(*) from partner.partner_messages) = 3,
        'partner.partner_messages: authenticated A2 should see RA''s 3 messages (incl. A''s new one)';
    ASSERT (select count(*) from partner.partner_messaging_preferences) = 2,
        'partner.partner_messaging_preferences: authenticated A2 should see 2 rows';
    ASSERT (select count(*) from partner.message_suggestions) = 1,
        'partner.message_suggestions: authenticated A2 should see 1 row (its own)';
    ASSERT (select count(*) from partner.message_suggestions
            where id = '50000000-0000-4000-8000-0000000000a2') = 1,
        'partner.message_suggestions: A2 should see its own suggestion, not A''s';
    ASSERT (select count(*) from partner.escalation_events) = 2,
        'partner.escalation_events: authenticated A2 should see RA''s 2 events';
END $$;

-- =====================================================================
-- authenticated as B (partner_a of RB): none of RA's rows
-- =====================================================================
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000b001');

DO $$
BEGIN
    ASSERT (select count(*) from partner.relationships
            where id = '10000000-0000-4000-8000-00000000000a') = 0,
        'partner.relationships: B should not see RA';
    ASSERT (select count(*) from partner.relationship_members
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 0,
        'partner.relationship_members: B should not see RA''s members';
    ASSERT (select count(*) from partner.partner_conversations
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 0,
        'partner.partner_conversations: B should not see RA''s conversation';
    ASSERT (select count(*) from partner.partner_messages
            where conversation_id = '20000000-0000-4000-8000-00000000000a') = 0,
        'partner.partner_messages: B should not see RA''s messages';
    ASSERT (select count(*) from partner.partner_messaging_preferences
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 0,
        'partner.partner_messaging_preferences: B should not see RA''s preferences';
    ASSERT (select count(*) from partner.message_suggestions
            where conversation_id = '20000000-0000-4000-8000-00000000000a') = 0,
        'partner.message_suggestions: B should not see RA''s suggestions';
    ASSERT (select count(*) from partner.escalation_events
            where relationship_id = '10000000-0000-4000-8000-00000000000a') = 0,
        'partner.escalation_events: B should not see RA''s events';

    ASSERT (select count(*) from partner.relationships) = 1,
        'partner.relationships: authenticated B should see 1 row';
    ASSERT (select count(*) from partner.relationship_members) = 2,
        'partner.relationship_members: authenticated B should see 2 rows';
    ASSERT (select count(*) from partner.partner_conversations) = 1,
        'partner.partner_conversations: authenticated B should see 1 row';
    ASSERT (select count(*) from partner.partner_messages) = 2,
        'partner.partner_messages: authenticated B should see 2 rows';
    ASSERT (select count(*) from partner.partner_messaging_preferences) = 2,
        'partner.partner_messaging_preferences: authenticated B should see 2 rows';
    ASSERT (select count(*) from partner.message_suggestions) = 1
       AND (select count(*) from partner.message_suggestions
            where id = '50000000-0000-4000-8000-0000000000b1') = 1,
        'partner.message_suggestions: authenticated B should see only its own suggestion';
    ASSERT (select count(*) from partner.escalation_events) = 1,
        'partner.escalation_events: authenticated B should see 1 row';
END $$;

-- =====================================================================
-- Authority (issue 11): what the documents give the backend or the other party
-- =====================================================================
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a001');

-- A sender forges nothing on insert: analysis, Luna and receipt columns are the backend's,
-- sent_at is the server's clock. Nor afterwards, on its own message.
SELECT pg_temp.assert_fails(format('INSERT INTO partner.partner_messages (conversation_id, sender_id, content, %s) VALUES (''20000000-0000-4000-8000-00000000000a'', ''partner_a'', ''You never listen.'', %s)', col, val),
                            'partner.partner_messages: A inserted its own message with ' || col, '{42501}')
  FROM (VALUES ('sentiment_label', '''positive'''), ('sentiment_score', '0.9'),
               ('escalation_risk', '''low'''), ('emotions', '''["joy"]'''),
               ('gottman_markers', '''{}'''), ('detected_triggers', '''[]'''),
               ('luna_intervened', 'true'), ('intervention_type', '''suggestion'''),
               ('intervention_accepted', 'true'), ('original_content', '''x'''),
               ('status', '''read'''), ('sent_at', '''2099-01-01'''),
               ('delivered_at', 'now()'), ('read_at', 'now()'), ('deleted_at', 'now()'),
               ('created_at', '''2099-01-01''')) AS v(col, val);
SELECT pg_temp.assert_fails(stmt, 'partner: A''s ' || stmt || ' should be refused', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE partner.partner_messages SET sentiment_label = ''positive'', escalation_risk = ''low'' WHERE id = ''30000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.partner_messages SET content = ''rewritten'' WHERE id = ''30000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.partner_messages SET sent_at = ''2099-01-01'' WHERE id = ''30000000-0000-4000-8000-0000000000a1''',
    -- receipts are the recipient's: A cannot mark its own message delivered or read
    'UPDATE partner.partner_messages SET status = ''read'', read_at = now() WHERE id = ''30000000-0000-4000-8000-0000000000a1''',
    -- and the recipient's receipt moves forward only
    'UPDATE partner.partner_messages SET status = ''sent'' WHERE id = ''30000000-0000-4000-8000-0000000000a2''',
    'UPDATE partner.partner_messages SET read_at = ''2000-01-01'' WHERE id = ''30000000-0000-4000-8000-0000000000a2''',
    -- only the sender deletes: A cannot soft-delete A2's words
    'UPDATE partner.partner_messages SET deleted_at = now() WHERE id = ''30000000-0000-4000-8000-0000000000a2''',
    -- the conversation's counters and preview are the trigger's
    'UPDATE partner.partner_conversations SET message_count = 0 WHERE id = ''20000000-0000-4000-8000-00000000000a''',
    'UPDATE partner.partner_conversations SET last_message_preview = ''forged'', last_message_at = ''2099-01-01'' WHERE id = ''20000000-0000-4000-8000-00000000000a''',
    'INSERT INTO partner.partner_conversations (relationship_id, message_count) VALUES (''10000000-0000-4000-8000-00000000000a'', 99)',
    -- Luna's suggestions and the escalation records are the backend's, in A's own relationship too
    'INSERT INTO partner.message_suggestions (conversation_id, sender_id, original_message, risk_assessment, primary_suggestion, suggestion_rationale) VALUES (''20000000-0000-4000-8000-00000000000a'', ''partner_a'', ''x'', ''safe'', ''x'', ''x'')',
    'UPDATE partner.message_suggestions SET primary_suggestion = ''forged'', risk_assessment = ''safe'' WHERE id = ''50000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.message_suggestions SET responded_at = ''2000-01-01'' WHERE id = ''50000000-0000-4000-8000-0000000000a1''',
    'DELETE FROM partner.message_suggestions WHERE id = ''50000000-0000-4000-8000-0000000000a1''',
    'INSERT INTO partner.escalation_events (relationship_id, source, severity) VALUES (''10000000-0000-4000-8000-00000000000a'', ''conflict'', ''low'')',
    -- hand your row to another user: a message, a suggestion or preferences to the partner
    'UPDATE partner.partner_messages SET sender_id = ''partner_b'' WHERE id = ''30000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.message_suggestions SET sender_id = ''partner_b'' WHERE id = ''50000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.message_suggestions SET author_id = ''00000000-0000-4000-8000-00000000a002'' WHERE id = ''50000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.partner_messaging_preferences SET partner_id = ''partner_b'' WHERE id = ''40000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.partner_messaging_preferences SET relationship_id = ''10000000-0000-4000-8000-00000000000b'' WHERE id = ''40000000-0000-4000-8000-0000000000a1'''
  ]) AS stmt;

-- references stay inside the conversation: no reply to, or final message from, another one
SELECT pg_temp.assert_fails('INSERT INTO partner.partner_messages (conversation_id, sender_id, content, reply_to_id) VALUES (''20000000-0000-4000-8000-00000000000a'', ''partner_a'', ''quoting RB'', ''30000000-0000-4000-8000-0000000000b1'')', 'partner.partner_messages: A replied to a message of RB''s conversation', '{23503}');
SELECT pg_temp.assert_fails('UPDATE partner.message_suggestions SET final_message_id = ''30000000-0000-4000-8000-0000000000b1'' WHERE id = ''50000000-0000-4000-8000-0000000000a1''', 'partner.message_suggestions: A pointed its suggestion at RB''s message', '{23503}');

-- A member may deactivate the conversation (and does not here, after all)
SELECT pg_temp.assert_affects('UPDATE partner.partner_conversations SET is_active = false WHERE id = ''20000000-0000-4000-8000-00000000000a''', 1, 'partner.partner_conversations: A should deactivate its conversation', undo => true);

-- soft delete: the sender deletes its own message once, stamped by the server; the partner
-- no longer sees it and nobody un-deletes it
DO $$
DECLARE n bigint;
BEGIN
    UPDATE partner.partner_messages SET deleted_at = '2000-01-01'
     WHERE id = '30000000-0000-4000-8000-0000000000a3';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'partner.partner_messages: A should soft-delete its own message';
    ASSERT (select deleted_at from partner.partner_messages
            where id = '30000000-0000-4000-8000-0000000000a3') = now(),
        'partner.partner_messages: deleted_at should be the server''s clock';
END $$;
SELECT pg_temp.assert_fails('UPDATE partner.partner_messages SET deleted_at = NULL WHERE id = ''30000000-0000-4000-8000-0000000000a3''', 'partner.partner_messages: A un-deleted its message', '{42501}');

SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a002');
DO $$ BEGIN
    ASSERT (select count(*) from partner.partner_messages) = 2
       AND (select count(*) from partner.partner_messages
            where id = '30000000-0000-4000-8000-0000000000a3') = 0,
        'partner.partner_messages: A2 should no longer see the message A deleted';
END $$;
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_messages SET deleted_at = NULL WHERE id = ''30000000-0000-4000-8000-0000000000a3''', 'partner.partner_messages: A2 un-deleted A''s message');
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.partner_messages SET status = ''read'' WHERE id = ''30000000-0000-4000-8000-0000000000a3''', 'partner.partner_messages: A2 marked A''s deleted message read');
-- the recipient's receipt is stamped by the server
DO $$
DECLARE n bigint;
BEGIN
    UPDATE partner.partner_messages SET status = 'delivered', delivered_at = '2000-01-01'
     WHERE id = '30000000-0000-4000-8000-0000000000a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    ASSERT n = 1, 'partner.partner_messages: A2 should mark A''s message delivered';
    ASSERT (select delivered_at from partner.partner_messages
            where id = '30000000-0000-4000-8000-0000000000a1') = now(),
        'partner.partner_messages: delivered_at should be the server''s clock';
END $$;

-- A also belongs to RC (with C, partner_b): re-pairing after a break-up is ordinary.
RESET ROLE;
INSERT INTO auth.users (id, email) VALUES
    ('00000000-0000-4000-8000-00000000a003', 'partner-c@example.com');
INSERT INTO partner.relationships (id, partner_a_id, partner_b_id) VALUES
    ('10000000-0000-4000-8000-00000000000c',
     '00000000-0000-4000-8000-00000000a001', '00000000-0000-4000-8000-00000000a003');

-- A cannot move RA's conversation (A2's messages and drafts) into RC
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a001');
SELECT pg_temp.assert_fails('UPDATE partner.partner_conversations SET relationship_id = ''10000000-0000-4000-8000-00000000000c'' WHERE id = ''20000000-0000-4000-8000-00000000000a''', 'partner.partner_conversations: A moved RA''s conversation into RC', '{42501}');
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a003');
DO $$ BEGIN
    ASSERT (select count(*) from partner.partner_messages) = 0
       AND (select count(*) from partner.message_suggestions) = 0,
        'partner.partner_messages: C should see none of RA''s messages or drafts';
END $$;

-- Drafts follow the person: when the backend re-pairs RA (C replaces A2 as partner_b), C
-- takes over the label partner_b but not A2's private drafts.
SELECT pg_temp.act_as('service_role');
UPDATE partner.relationships SET partner_b_id = '00000000-0000-4000-8000-00000000a003'
 WHERE id = '10000000-0000-4000-8000-00000000000a';
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a003');
DO $$ BEGIN
    ASSERT (select count(*) from partner.message_suggestions
            where id = '50000000-0000-4000-8000-0000000000a2') = 0,
        'partner.message_suggestions: C should not see A2''s draft after taking A2''s place';
END $$;
SELECT pg_temp.assert_no_rows_affected('UPDATE partner.message_suggestions SET user_action = ''ignored'' WHERE id = ''50000000-0000-4000-8000-0000000000a2''', 'partner.message_suggestions: C answered A2''s draft');
SELECT pg_temp.act_as('service_role');
UPDATE partner.relationships SET partner_b_id = '00000000-0000-4000-8000-00000000a002'
 WHERE id = '10000000-0000-4000-8000-00000000000a';

-- The policies refuse a hand-over by themselves too (issue 16): with the owner column made
-- updatable for a moment (a grant a later migration might widen; the whole script is rolled
-- back), A still cannot give its rows to B or RB. Catches a policy's WITH CHECK weakened behind
-- the column grants, which the hand-over checks above cannot see.
RESET ROLE;
GRANT UPDATE (relationship_id) ON partner.partner_conversations TO authenticated;
GRANT UPDATE (conversation_id) ON partner.partner_messages TO authenticated;
GRANT UPDATE (relationship_id, partner_id) ON partner.partner_messaging_preferences TO authenticated;
GRANT UPDATE (author_id) ON partner.message_suggestions TO authenticated;
SELECT pg_temp.act_as('authenticated', '00000000-0000-4000-8000-00000000a001');
SELECT pg_temp.assert_fails(stmt, 'partner: A''s ' || stmt || ' got past the policy', '{42501}')
  FROM unnest(ARRAY[
    'UPDATE partner.partner_conversations SET relationship_id = ''10000000-0000-4000-8000-00000000000b''',
    'UPDATE partner.partner_messages SET conversation_id = ''20000000-0000-4000-8000-00000000000b''',
    'UPDATE partner.partner_messaging_preferences SET relationship_id = ''10000000-0000-4000-8000-00000000000b'' WHERE id = ''40000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.partner_messaging_preferences SET partner_id = ''partner_b'' WHERE id = ''40000000-0000-4000-8000-0000000000a1''',
    'UPDATE partner.message_suggestions SET author_id = ''00000000-0000-4000-8000-00000000b001'''
  ]) AS stmt;
RESET ROLE;
REVOKE UPDATE (relationship_id) ON partner.partner_conversations FROM authenticated;
REVOKE UPDATE (conversation_id) ON partner.partner_messages FROM authenticated;
REVOKE UPDATE (relationship_id, partner_id) ON partner.partner_messaging_preferences FROM authenticated;
REVOKE UPDATE (author_id) ON partner.message_suggestions FROM authenticated;

-- =====================================================================
-- anon: nothing (no table privileges; permission denied counts as seeing none)
-- =====================================================================
select pg_temp.act_as('anon');

select pg_temp.anon_sees_nothing(ARRAY[
    'partner.relationships',
    'partner.relationship_members',
    'partner.partner_conversations',
    'partner.partner_messages',
    'partner.partner_messaging_preferences',
    'partner.message_suggestions',
    'partner.escalation_events'
]);

-- =====================================================================
-- service_role: everything
-- =====================================================================
select pg_temp.act_as('service_role');

-- Counted among RA's and RB's rows only: the database may also hold seed data.
DO $$
DECLARE
    ra constant uuid := '10000000-0000-4000-8000-00000000000a';
    rb constant uuid := '10000000-0000-4000-8000-00000000000b';
    ca constant uuid := '20000000-0000-4000-8000-00000000000a';
    cb constant uuid := '20000000-0000-4000-8000-00000000000b';
BEGIN
    ASSERT (select count(*) from partner.relationships where id in (ra, rb)) = 2,
        'partner.relationships: service_role should see RA and RB';
    ASSERT (select count(*) from partner.relationship_members where relationship_id in (ra, rb)) = 4,
        'partner.relationship_members: service_role should see RA''s and RB''s 4 members';
    ASSERT (select count(*) from partner.partner_conversations where relationship_id in (ra, rb)) = 2,
        'partner.partner_conversations: service_role should see RA''s and RB''s conversations';
    ASSERT (select count(*) from partner.partner_messages where conversation_id in (ca, cb)) = 5,
        'partner.partner_messages: service_role should see RA''s 3 and RB''s 2 messages';
    ASSERT (select count(*) from partner.partner_messaging_preferences where relationship_id in (ra, rb)) = 4,
        'partner.partner_messaging_preferences: service_role should see RA''s and RB''s 4 rows';
    ASSERT (select count(*) from partner.message_suggestions where conversation_id in (ca, cb)) = 5,
        'partner.message_suggestions: service_role should see RA''s 3 and RB''s 2 suggestions';
    ASSERT (select count(*) from partner.escalation_events where relationship_id in (ra, rb)) = 3,
        'partner.escalation_events: service_role should see RA''s 2 and RB''s 1 events';
END $$;

reset role;
