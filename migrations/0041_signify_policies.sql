-- signify: row level security policies, written from the prose of sections 3 and 7 of the
-- document (which names no policies; the names below are ours).
-- Every policy is TO authenticated and calls (select auth.uid()) once per query.
-- service_role bypasses RLS ("service role can read for admin dashboards", content team).
--   users                 select/update own row (3.1); rows are created by the backend
--   user_settings,
--   chat_sessions,
--   practice_sessions     owner-only for every command (7: USING (user_id = auth.uid()))
--   chat_messages         through the owning chat session (7)
--   lessons               read active lessons (and one's own); insert/update as author (7)
--   notes, tests          read when the lesson is readable; write by the lesson's author (3.4)
--   tests_content         lesson's author only: rows carry correct_answer, so learners get
--                         questions through the backend (service_role), never directly
--   media_assets          owner-only (7: practice recordings stay private), plus read of an
--                         asset that is the cover of a lesson the caller can read
-- A lesson's cover must be the author's own media (else the cover rule would publish someone
-- else's private recording). That check goes through signify.is_own_media(), SECURITY
-- DEFINER, because a subquery on media_assets inside a lessons policy would expand
-- media_assets' cover policy, which reads lessons again: infinite recursion.
-- UP

-- true when the media asset exists and belongs to the caller; reveals nothing else
CREATE FUNCTION signify.is_own_media(p_media_id uuid)
RETURNS boolean
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM signify.media_assets m
        WHERE m.id = p_media_id AND m.owner_id = (SELECT auth.uid())
    )
$fn$;

REVOKE ALL ON FUNCTION signify.is_own_media(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION signify.is_own_media(uuid) TO authenticated, service_role;

-- 3.1 users
CREATE POLICY users_select_own ON signify.users
    FOR SELECT TO authenticated
    USING (id = (select auth.uid()));

CREATE POLICY users_update_own ON signify.users
    FOR UPDATE TO authenticated
    USING (id = (select auth.uid()))
    WITH CHECK (id = (select auth.uid()));

-- 3.2 user_settings
CREATE POLICY user_settings_owner ON signify.user_settings
    FOR ALL TO authenticated
    USING (user_id = (select auth.uid()))
    WITH CHECK (user_id = (select auth.uid()));

-- 3.10 media_assets
CREATE POLICY media_assets_owner ON signify.media_assets
    FOR ALL TO authenticated
    USING (owner_id = (select auth.uid()))
    WITH CHECK (owner_id = (select auth.uid()));

CREATE POLICY media_assets_select_lesson_cover ON signify.media_assets
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.cover_media_id = media_assets.id
              AND (l.is_active OR l.author_id = (select auth.uid()))
        )
    );

-- 3.3 lessons
CREATE POLICY lessons_select_active ON signify.lessons
    FOR SELECT TO authenticated
    USING (is_active OR author_id = (select auth.uid()));

-- an author may only use their own media as a cover (see the header)
CREATE POLICY lessons_insert_author ON signify.lessons
    FOR INSERT TO authenticated
    WITH CHECK (
        author_id = (select auth.uid())
        AND (cover_media_id IS NULL OR signify.is_own_media(cover_media_id))
    );

CREATE POLICY lessons_update_author ON signify.lessons
    FOR UPDATE TO authenticated
    USING (author_id = (select auth.uid()))
    WITH CHECK (
        author_id = (select auth.uid())
        AND (cover_media_id IS NULL OR signify.is_own_media(cover_media_id))
    );

-- 3.4 notes
CREATE POLICY notes_select_readable_lesson ON signify.notes
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = notes.lesson_id
              AND (l.is_active OR l.author_id = (select auth.uid()))
        )
    );

CREATE POLICY notes_write_author ON signify.notes
    FOR ALL TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = notes.lesson_id AND l.author_id = (select auth.uid())
        )
    )
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = notes.lesson_id AND l.author_id = (select auth.uid())
        )
    );

-- 3.5 tests
CREATE POLICY tests_select_readable_lesson ON signify.tests
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = tests.lesson_id
              AND (l.is_active OR l.author_id = (select auth.uid()))
        )
    );

CREATE POLICY tests_write_author ON signify.tests
    FOR ALL TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = tests.lesson_id AND l.author_id = (select auth.uid())
        )
    )
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = tests.lesson_id AND l.author_id = (select auth.uid())
        )
    );

-- 3.6 tests_content
CREATE POLICY tests_content_author ON signify.tests_content
    FOR ALL TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.tests t
            JOIN signify.lessons l ON l.id = t.lesson_id
            WHERE t.id = tests_content.test_id AND l.author_id = (select auth.uid())
        )
    )
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM signify.tests t
            JOIN signify.lessons l ON l.id = t.lesson_id
            WHERE t.id = tests_content.test_id AND l.author_id = (select auth.uid())
        )
    );

-- 3.7 chat_sessions
CREATE POLICY chat_sessions_owner ON signify.chat_sessions
    FOR ALL TO authenticated
    USING (user_id = (select auth.uid()))
    WITH CHECK (user_id = (select auth.uid()));

-- 3.8 chat_messages
CREATE POLICY chat_messages_owner ON signify.chat_messages
    FOR ALL TO authenticated
    USING (chat_id IN (
        SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())))
    WITH CHECK (chat_id IN (
        SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())));

-- 3.9 practice_sessions
CREATE POLICY practice_sessions_owner ON signify.practice_sessions
    FOR ALL TO authenticated
    USING (user_id = (select auth.uid()))
    WITH CHECK (user_id = (select auth.uid()));

-- DOWN
DROP POLICY practice_sessions_owner ON signify.practice_sessions;
DROP POLICY chat_messages_owner ON signify.chat_messages;
DROP POLICY chat_sessions_owner ON signify.chat_sessions;
DROP POLICY tests_content_author ON signify.tests_content;
DROP POLICY tests_write_author ON signify.tests;
DROP POLICY tests_select_readable_lesson ON signify.tests;
DROP POLICY notes_write_author ON signify.notes;
DROP POLICY notes_select_readable_lesson ON signify.notes;
DROP POLICY lessons_update_author ON signify.lessons;
DROP POLICY lessons_insert_author ON signify.lessons;
DROP POLICY lessons_select_active ON signify.lessons;
DROP POLICY media_assets_select_lesson_cover ON signify.media_assets;
DROP POLICY media_assets_owner ON signify.media_assets;
DROP POLICY user_settings_owner ON signify.user_settings;
DROP POLICY users_update_own ON signify.users;
DROP POLICY users_select_own ON signify.users;
DROP FUNCTION signify.is_own_media(uuid);
