-- signify: what a client (authenticated, through PostgREST) may write, per column (issue 11).
-- XP comes from completed practice, decided by the backend: increment_xp is service_role's
-- only, and practice evaluation (score, feedback, xp_awarded, completed_at) is not
-- client-writable. The tutor's and the system's chat messages and tool calls are the
-- backend's; the profile email comes from auth.users. References a client writes point only
-- at what it may see (its own media, lessons it can read). No API-callable SECURITY DEFINER
-- helper is left: the cover rule becomes a trigger, my_practice_metrics a SECURITY INVOKER
-- function over the caller's own sessions, and no table has two permissive policies for one
-- role and command. Rules per table: migrations/README.md, "Client writes".
-- UP

-- ============================================
-- XP: the backend's
-- ============================================
REVOKE EXECUTE ON FUNCTION signify.increment_xp(uuid, integer) FROM authenticated;

-- ============================================
-- users: nickname and full name; xp, streak_count (also guarded by protect_users_progress),
-- last_active_at (server-timed) and email (from auth.users) are the backend's
-- ============================================
REVOKE INSERT, UPDATE, DELETE ON signify.users FROM authenticated;
GRANT UPDATE (full_name, nickname) ON signify.users TO authenticated;

-- ============================================
-- user_settings: the owner's preferences; user_id is set once, on insert
-- ============================================
REVOKE INSERT, UPDATE ON signify.user_settings FROM authenticated;
GRANT INSERT (user_id, app_theme, prefers_assistive_learning, notifications, time_zone)
    ON signify.user_settings TO authenticated;
GRANT UPDATE (app_theme, prefers_assistive_learning, notifications, time_zone)
    ON signify.user_settings TO authenticated;

-- ============================================
-- media_assets: one SELECT policy (own assets, and covers of lessons one can read) and one
-- policy per write command, owner only. Where an asset lives (bucket, path) and who owns
-- it are fixed once inserted.
-- ============================================
DROP POLICY media_assets_select_lesson_cover ON signify.media_assets;
DROP POLICY media_assets_owner ON signify.media_assets;
CREATE POLICY media_assets_select_own_or_cover ON signify.media_assets
    FOR SELECT TO authenticated
    USING (
        owner_id = (select auth.uid())
        OR EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.cover_media_id = media_assets.id
              AND (l.is_active OR l.author_id = (select auth.uid()))
        )
    );
CREATE POLICY media_assets_insert_owner ON signify.media_assets
    FOR INSERT TO authenticated
    WITH CHECK (owner_id = (select auth.uid()));
CREATE POLICY media_assets_update_owner ON signify.media_assets
    FOR UPDATE TO authenticated
    USING (owner_id = (select auth.uid()))
    WITH CHECK (owner_id = (select auth.uid()));
CREATE POLICY media_assets_delete_owner ON signify.media_assets
    FOR DELETE TO authenticated
    USING (owner_id = (select auth.uid()));
REVOKE INSERT, UPDATE ON signify.media_assets FROM authenticated;
GRANT INSERT (id, owner_id, bucket, path, media_type, duration_seconds, metadata)
    ON signify.media_assets TO authenticated;
GRANT UPDATE (media_type, duration_seconds, metadata) ON signify.media_assets TO authenticated;

-- ============================================
-- lessons: authors write their lessons; author_id is fixed once inserted. A cover must be
-- NULL or the client's own asset: checked by a trigger running as the client (through
-- media_assets' own RLS), which replaces the SECURITY DEFINER policy helper is_own_media.
-- ============================================
CREATE FUNCTION signify.check_lesson_cover()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $fn$
BEGIN
    IF current_user IN ('anon', 'authenticated')
       AND NEW.cover_media_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.cover_media_id IS DISTINCT FROM OLD.cover_media_id)
       AND NOT EXISTS (SELECT 1 FROM signify.media_assets m
                       WHERE m.id = NEW.cover_media_id AND m.owner_id = (SELECT auth.uid())) THEN
        RAISE EXCEPTION 'signify.lessons: a lesson''s cover must be one of your own media assets'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$fn$;
CREATE TRIGGER check_lessons_cover
    BEFORE INSERT OR UPDATE OF cover_media_id ON signify.lessons
    FOR EACH ROW EXECUTE FUNCTION signify.check_lesson_cover();
ALTER POLICY lessons_insert_author ON signify.lessons
    WITH CHECK (author_id = (select auth.uid()));
ALTER POLICY lessons_update_author ON signify.lessons
    USING (author_id = (select auth.uid()))
    WITH CHECK (author_id = (select auth.uid()));
DROP FUNCTION signify.is_own_media(uuid);
REVOKE INSERT, UPDATE ON signify.lessons FROM authenticated;
GRANT INSERT (id, author_id, lesson_code, title, description, lesson_type, difficulty_level,
              cover_media_id, is_active, published_at)
    ON signify.lessons TO authenticated;
GRANT UPDATE (lesson_code, title, description, lesson_type, difficulty_level, cover_media_id,
              is_active, published_at)
    ON signify.lessons TO authenticated;

-- ============================================
-- notes, tests, tests_content: the lesson's author writes them; the lesson (test) a row
-- belongs to is fixed once inserted. notes and tests get one policy per write command, so
-- SELECT has a single permissive policy.
-- ============================================
DROP POLICY notes_write_author ON signify.notes;
CREATE POLICY notes_insert_author ON signify.notes
    FOR INSERT TO authenticated
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = notes.lesson_id AND l.author_id = (select auth.uid())
        )
    );
CREATE POLICY notes_update_author ON signify.notes
    FOR UPDATE TO authenticated
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
CREATE POLICY notes_delete_author ON signify.notes
    FOR DELETE TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = notes.lesson_id AND l.author_id = (select auth.uid())
        )
    );
REVOKE INSERT, UPDATE ON signify.notes FROM authenticated;
GRANT INSERT (id, lesson_id, title, note_content, tool_calls, tool_calls_content, language_code,
              version)
    ON signify.notes TO authenticated;
GRANT UPDATE (title, note_content, tool_calls, tool_calls_content, language_code, version)
    ON signify.notes TO authenticated;

DROP POLICY tests_write_author ON signify.tests;
CREATE POLICY tests_insert_author ON signify.tests
    FOR INSERT TO authenticated
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = tests.lesson_id AND l.author_id = (select auth.uid())
        )
    );
CREATE POLICY tests_update_author ON signify.tests
    FOR UPDATE TO authenticated
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
CREATE POLICY tests_delete_author ON signify.tests
    FOR DELETE TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM signify.lessons l
            WHERE l.id = tests.lesson_id AND l.author_id = (select auth.uid())
        )
    );
REVOKE INSERT, UPDATE ON signify.tests FROM authenticated;
GRANT INSERT (id, lesson_id, title, passing_score, time_limit_seconds)
    ON signify.tests TO authenticated;
GRANT UPDATE (title, passing_score, time_limit_seconds) ON signify.tests TO authenticated;

REVOKE INSERT, UPDATE ON signify.tests_content FROM authenticated;
GRANT INSERT (id, test_id, sequence, test_type, test_content, test_options, test_ref,
              correct_answer)
    ON signify.tests_content TO authenticated;
GRANT UPDATE (sequence, test_type, test_content, test_options, test_ref, correct_answer)
    ON signify.tests_content TO authenticated;

-- ============================================
-- chat_sessions: the owner names and closes its chats; the tutor context (context_snapshot)
-- is built by the backend; a source lesson must be one the owner can read
-- ============================================
ALTER POLICY chat_sessions_owner ON signify.chat_sessions
    USING (user_id = (select auth.uid()))
    WITH CHECK (
        user_id = (select auth.uid())
        AND (source_lesson_id IS NULL
             OR EXISTS (SELECT 1 FROM signify.lessons l WHERE l.id = chat_sessions.source_lesson_id))
    );
REVOKE INSERT, UPDATE ON signify.chat_sessions FROM authenticated;
GRANT INSERT (id, user_id, chat_name, source_lesson_id, is_active)
    ON signify.chat_sessions TO authenticated;
GRANT UPDATE (chat_name, is_active) ON signify.chat_sessions TO authenticated;

-- ============================================
-- chat_messages: the owner inserts its own (sender 'user') messages; tutor and system
-- messages, tool calls and the ordering (sequence) are the backend's. No client UPDATE.
-- ============================================
ALTER POLICY chat_messages_owner ON signify.chat_messages
    USING (chat_id IN (
        SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())))
    WITH CHECK (
        sender = 'user'
        AND chat_id IN (
            SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())));
REVOKE INSERT, UPDATE ON signify.chat_messages FROM authenticated;
GRANT INSERT (id, chat_id, sender, message_content, attachments)
    ON signify.chat_messages TO authenticated;

-- ============================================
-- practice_sessions: the learner starts an attempt and attaches its capture (raw_metrics,
-- media); the evaluation (score, feedback, xp_awarded) and completion are the backend's,
-- started_at the server's clock. The lesson must be readable and the media the learner's own.
-- ============================================
ALTER POLICY practice_sessions_owner ON signify.practice_sessions
    USING (user_id = (select auth.uid()))
    WITH CHECK (
        user_id = (select auth.uid())
        AND (lesson_id IS NULL
             OR EXISTS (SELECT 1 FROM signify.lessons l WHERE l.id = practice_sessions.lesson_id))
        AND (media_id IS NULL
             OR EXISTS (SELECT 1 FROM signify.media_assets m
                        WHERE m.id = practice_sessions.media_id
                          AND m.owner_id = (select auth.uid())))
    );
REVOKE INSERT, UPDATE ON signify.practice_sessions FROM authenticated;
GRANT INSERT (id, user_id, lesson_id, mode, raw_metrics, media_id)
    ON signify.practice_sessions TO authenticated;
GRANT UPDATE (raw_metrics, media_id) ON signify.practice_sessions TO authenticated;

-- ============================================
-- my_practice_metrics: SECURITY INVOKER, the caller's completed sessions aggregated like
-- practice_metrics_daily (which stays service_role's, refreshed nightly), read under the
-- caller's own RLS
-- ============================================
CREATE OR REPLACE FUNCTION signify.my_practice_metrics(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS TABLE (
    metric_date date,
    mode text,
    session_count bigint,
    avg_score numeric,
    best_score numeric,
    xp_gained bigint,
    practice_seconds bigint
)
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = ''
AS $fn$
    SELECT d.metric_date, d.mode, d.session_count, d.avg_score, d.best_score,
           d.xp_gained, d.practice_seconds
    FROM (
        SELECT (ps.completed_at AT TIME ZONE 'UTC')::date AS metric_date,
               ps.mode,
               pg_catalog.count(*)::bigint AS session_count,
               pg_catalog.round(pg_catalog.avg(ps.score), 2) AS avg_score,
               pg_catalog.max(ps.score) AS best_score,
               pg_catalog.sum(ps.xp_awarded)::bigint AS xp_gained,
               pg_catalog.sum(EXTRACT(EPOCH FROM ps.completed_at - ps.started_at))::bigint
                   AS practice_seconds
        FROM signify.practice_sessions ps
        WHERE ps.user_id = (SELECT auth.uid()) AND ps.completed_at IS NOT NULL
        GROUP BY 1, 2
    ) d
    WHERE (p_from IS NULL OR d.metric_date >= p_from)
      AND (p_to IS NULL OR d.metric_date <= p_to)
    ORDER BY d.metric_date, d.mode
$fn$;

-- DOWN
CREATE OR REPLACE FUNCTION signify.my_practice_metrics(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS TABLE (
    metric_date date,
    mode text,
    session_count bigint,
    avg_score numeric,
    best_score numeric,
    xp_gained bigint,
    practice_seconds bigint
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $fn$
    SELECT m.metric_date, m.mode, m.session_count, m.avg_score, m.best_score,
           m.xp_gained, m.practice_seconds
    FROM signify.practice_metrics_daily m
    WHERE m.user_id = (SELECT auth.uid())
      AND (p_from IS NULL OR m.metric_date >= p_from)
      AND (p_to IS NULL OR m.metric_date <= p_to)
    ORDER BY m.metric_date, m.mode
$fn$;

REVOKE UPDATE (raw_metrics, media_id) ON signify.practice_sessions FROM authenticated;
REVOKE INSERT (id, user_id, lesson_id, mode, raw_metrics, media_id)
    ON signify.practice_sessions FROM authenticated;
GRANT INSERT, UPDATE ON signify.practice_sessions TO authenticated;
ALTER POLICY practice_sessions_owner ON signify.practice_sessions
    USING (user_id = (select auth.uid()))
    WITH CHECK (user_id = (select auth.uid()));

REVOKE INSERT (id, chat_id, sender, message_content, attachments)
    ON signify.chat_messages FROM authenticated;
GRANT INSERT, UPDATE ON signify.chat_messages TO authenticated;
ALTER POLICY chat_messages_owner ON signify.chat_messages
    USING (chat_id IN (
        SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())))
    WITH CHECK (chat_id IN (
        SELECT cs.id FROM signify.chat_sessions cs WHERE cs.user_id = (select auth.uid())));

REVOKE UPDATE (chat_name, is_active) ON signify.chat_sessions FROM authenticated;
REVOKE INSERT (id, user_id, chat_name, source_lesson_id, is_active)
    ON signify.chat_sessions FROM authenticated;
GRANT INSERT, UPDATE ON signify.chat_sessions TO authenticated;
ALTER POLICY chat_sessions_owner ON signify.chat_sessions
    USING (user_id = (select auth.uid()))
    WITH CHECK (user_id = (select auth.uid()));

REVOKE UPDATE (sequence, test_type, test_content, test_options, test_ref, correct_answer)
    ON signify.tests_content FROM authenticated;
REVOKE INSERT (id, test_id, sequence, test_type, test_content, test_options, test_ref,
               correct_answer)
    ON signify.tests_content FROM authenticated;
GRANT INSERT, UPDATE ON signify.tests_content TO authenticated;

REVOKE UPDATE (title, passing_score, time_limit_seconds) ON signify.tests FROM authenticated;
REVOKE INSERT (id, lesson_id, title, passing_score, time_limit_seconds)
    ON signify.tests FROM authenticated;
GRANT INSERT, UPDATE ON signify.tests TO authenticated;
DROP POLICY tests_delete_author ON signify.tests;
DROP POLICY tests_update_author ON signify.tests;
DROP POLICY tests_insert_author ON signify.tests;
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

REVOKE UPDATE (title, note_content, tool_calls, tool_calls_content, language_code, version)
    ON signify.notes FROM authenticated;
REVOKE INSERT (id, lesson_id, title, note_content, tool_calls, tool_calls_content,
               language_code, version)
    ON signify.notes FROM authenticated;
GRANT INSERT, UPDATE ON signify.notes TO authenticated;
DROP POLICY notes_delete_author ON signify.notes;
DROP POLICY notes_update_author ON signify.notes;
DROP POLICY notes_insert_author ON signify.notes;
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

REVOKE UPDATE (lesson_code, title, description, lesson_type, difficulty_level, cover_media_id,
               is_active, published_at)
    ON signify.lessons FROM authenticated;
REVOKE INSERT (id, author_id, lesson_code, title, description, lesson_type, difficulty_level,
               cover_media_id, is_active, published_at)
    ON signify.lessons FROM authenticated;
GRANT INSERT, UPDATE ON signify.lessons TO authenticated;
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
ALTER POLICY lessons_update_author ON signify.lessons
    USING (author_id = (select auth.uid()))
    WITH CHECK (
        author_id = (select auth.uid())
        AND (cover_media_id IS NULL OR signify.is_own_media(cover_media_id))
    );
ALTER POLICY lessons_insert_author ON signify.lessons
    WITH CHECK (
        author_id = (select auth.uid())
        AND (cover_media_id IS NULL OR signify.is_own_media(cover_media_id))
    );
DROP TRIGGER check_lessons_cover ON signify.lessons;
DROP FUNCTION signify.check_lesson_cover();

REVOKE UPDATE (media_type, duration_seconds, metadata) ON signify.media_assets FROM authenticated;
REVOKE INSERT (id, owner_id, bucket, path, media_type, duration_seconds, metadata)
    ON signify.media_assets FROM authenticated;
GRANT INSERT, UPDATE ON signify.media_assets TO authenticated;
DROP POLICY media_assets_delete_owner ON signify.media_assets;
DROP POLICY media_assets_update_owner ON signify.media_assets;
DROP POLICY media_assets_insert_owner ON signify.media_assets;
DROP POLICY media_assets_select_own_or_cover ON signify.media_assets;
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

REVOKE UPDATE (app_theme, prefers_assistive_learning, notifications, time_zone)
    ON signify.user_settings FROM authenticated;
REVOKE INSERT (user_id, app_theme, prefers_assistive_learning, notifications, time_zone)
    ON signify.user_settings FROM authenticated;
GRANT INSERT, UPDATE ON signify.user_settings TO authenticated;

REVOKE UPDATE (full_name, nickname) ON signify.users FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON signify.users TO authenticated;

-- re-granted in 0042's order, so the function's ACL is the same array again
REVOKE EXECUTE ON FUNCTION signify.increment_xp(uuid, integer) FROM service_role;
GRANT EXECUTE ON FUNCTION signify.increment_xp(uuid, integer) TO authenticated, service_role;
