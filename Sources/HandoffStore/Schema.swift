/// Named, append-only migrations in neutral DDL (see ``SQLDialect/ddl(_:)``). Never edit a migration
/// that has shipped; add a new one.
///
/// Entities are stored as a JSON `data` column plus the scalar columns that queries filter and sort
/// on, each with the index its hot query needs. Times are integer milliseconds since 1970.
package enum Schema {
    package struct Migration: Sendable {
        package var name: String
        package var statements: [String]
    }

    package static let migrations: [Migration] = [
        Migration(name: "0001_workflow", statements: [
            """
            CREATE TABLE id_counters (
                kind {text} PRIMARY KEY,
                next_id {int} NOT NULL
            )
            """,
            """
            CREATE TABLE approvals (
                id {int} PRIMARY KEY,
                status {text} NOT NULL,
                action {text} NOT NULL,
                requester {text} NOT NULL,
                policy {text} NOT NULL,
                created_at {int} NOT NULL,
                expires_at {int} NOT NULL,
                decided_at {int},
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            "CREATE INDEX approvals_status ON approvals (status, id)",
            "CREATE INDEX approvals_requester ON approvals (requester, id)",
            """
            CREATE TABLE review_items (
                id {int} PRIMARY KEY,
                queue {text} NOT NULL,
                status {text} NOT NULL,
                priority {int} NOT NULL,
                created_at {int} NOT NULL,
                completed_at {int},
                sla_breached {int} NOT NULL DEFAULT 0,
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            // Claim order: priority, then oldest first; only pending rows are in this index.
            "CREATE INDEX review_items_claim ON review_items (queue, priority, created_at, id) WHERE status = 'pending'",
            "CREATE INDEX review_items_queue_status ON review_items (queue, status)",
            "CREATE INDEX review_items_breached ON review_items (queue) WHERE sla_breached = 1",
            """
            CREATE TABLE reviews (
                id {autoid},
                item_id {int} NOT NULL REFERENCES review_items (id),
                queue {text} NOT NULL,
                reviewer {text} NOT NULL,
                verdict {text} NOT NULL,
                claimed_at {int} NOT NULL,
                submitted_at {int} NOT NULL,
                waited_ms {int} NOT NULL,
                decide_ms {int} NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX reviews_item_reviewer ON reviews (item_id, reviewer)",
            "CREATE INDEX reviews_queue_waited ON reviews (queue, waited_ms)",
            "CREATE INDEX reviews_queue_decide ON reviews (queue, decide_ms)",
            "CREATE INDEX reviews_reviewer_decide ON reviews (reviewer, decide_ms)",
            "CREATE INDEX reviews_reviewer_verdict ON reviews (reviewer, verdict)",
            "CREATE INDEX reviews_queue_reviewer ON reviews (queue, reviewer, verdict)",
            """
            CREATE TABLE escalations (
                id {int} PRIMARY KEY,
                status {text} NOT NULL,
                tier {text} NOT NULL,
                breached {int} NOT NULL DEFAULT 0,
                created_at {int} NOT NULL,
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            "CREATE INDEX escalations_status ON escalations (status, tier, id)",
            """
            CREATE TABLE feedback (
                id {int} PRIMARY KEY,
                status {text} NOT NULL,
                channel {text} NOT NULL,
                created_at {int} NOT NULL,
                deadline {int} NOT NULL,
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            "CREATE INDEX feedback_channel_status ON feedback (channel, status)",
            """
            CREATE TABLE corrections (
                id {int} PRIMARY KEY,
                route {text},
                created_at {int} NOT NULL,
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            """
            CREATE TABLE correction_terms (
                term {text} NOT NULL,
                correction_id {int} NOT NULL REFERENCES corrections (id),
                PRIMARY KEY (term, correction_id)
            )
            """,
            """
            CREATE TABLE label_tasks (
                id {int} PRIMARY KEY,
                dataset {text} NOT NULL,
                status {text} NOT NULL,
                created_at {int} NOT NULL,
                version {int} NOT NULL,
                data {text} NOT NULL
            )
            """,
            // Next task in a dataset: both equality columns, so the planner never walks completed tasks.
            "CREATE INDEX label_tasks_next ON label_tasks (dataset, status, id)",
            "CREATE INDEX label_tasks_open ON label_tasks (id) WHERE status = 'open'",
            "CREATE INDEX label_tasks_dataset ON label_tasks (dataset, id)",
            """
            CREATE TABLE labels (
                task_id {int} NOT NULL REFERENCES label_tasks (id),
                labeler {text} NOT NULL,
                dataset {text} NOT NULL,
                created_at {int} NOT NULL,
                value {text} NOT NULL,
                PRIMARY KEY (task_id, labeler)
            )
            """,
            "CREATE INDEX labels_dataset ON labels (dataset, task_id)",
            """
            CREATE TABLE audit (
                id {autoid},
                at {int} NOT NULL,
                actor {text} NOT NULL,
                entity_kind {text} NOT NULL,
                entity_id {int} NOT NULL,
                from_state {text},
                to_state {text} NOT NULL,
                detail {text}
            )
            """,
            "CREATE INDEX audit_entity ON audit (entity_kind, entity_id, id)",
            """
            CREATE TABLE outbox (
                id {autoid},
                kind {text} NOT NULL,
                entity_kind {text} NOT NULL,
                entity_id {int} NOT NULL,
                destination {text},
                payload {text} NOT NULL,
                status {text} NOT NULL,
                attempts {int} NOT NULL DEFAULT 0,
                next_attempt_at {int} NOT NULL,
                lease_until {int},
                created_at {int} NOT NULL,
                last_error {text}
            )
            """,
            "CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending'",
            "CREATE INDEX outbox_entity ON outbox (entity_kind, entity_id, id)",
            """
            CREATE TABLE timers (
                entity_kind {text} NOT NULL,
                entity_id {int} NOT NULL,
                kind {text} NOT NULL,
                due_at {int} NOT NULL,
                PRIMARY KEY (entity_kind, entity_id, kind)
            )
            """,
            "CREATE INDEX timers_due ON timers (due_at)",
            """
            CREATE TABLE inbox (
                source {text} NOT NULL,
                key {text} NOT NULL,
                entity_kind {text},
                entity_id {int},
                request_hash {text},
                created_at {int} NOT NULL,
                PRIMARY KEY (source, key)
            )
            """,
            "CREATE INDEX inbox_created ON inbox (created_at)",
        ]),
        Migration(name: "0002_service", statements: [
            // API keys: only a SHA-256 of the secret is kept; the key is shown once at creation.
            """
            CREATE TABLE api_keys (
                id {text} PRIMARY KEY,
                name {text} NOT NULL,
                scope {text} NOT NULL,
                secret_hash {text} NOT NULL,
                created_at {int} NOT NULL,
                last_used_at {int},
                revoked_at {int}
            )
            """,
            "CREATE UNIQUE INDEX api_keys_name ON api_keys (name) WHERE revoked_at IS NULL",
            // Cards the bot posted: recorded as 'posting' before the platform call, so a crash in
            // between is reconciled (by nonce) instead of blindly posting a second card.
            """
            CREATE TABLE card_refs (
                id {autoid},
                entity_kind {text} NOT NULL,
                entity_id {int} NOT NULL,
                platform {text} NOT NULL,
                destination {text} NOT NULL,
                channel {text} NOT NULL,
                message_id {text},
                thread_id {text},
                state {text} NOT NULL,
                nonce {text} NOT NULL,
                created_at {int} NOT NULL,
                updated_at {int} NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX card_refs_nonce ON card_refs (nonce)",
            "CREATE UNIQUE INDEX card_refs_message ON card_refs (platform, channel, message_id)",
            "CREATE INDEX card_refs_entity ON card_refs (entity_kind, entity_id, id)",
            // Inbound chat events, written before the platform sees our ack and processed after it:
            // nothing acknowledged is lost. (platform, event_key) is unique, so a redelivery adds nothing.
            """
            CREATE TABLE inbound_events (
                id {autoid},
                platform {text} NOT NULL,
                event_key {text} NOT NULL,
                payload {text} NOT NULL,
                status {text} NOT NULL,
                attempts {int} NOT NULL DEFAULT 0,
                received_at {int} NOT NULL,
                processed_at {int},
                last_error {text}
            )
            """,
            "CREATE UNIQUE INDEX inbound_events_key ON inbound_events (platform, event_key)",
            "CREATE INDEX inbound_events_pending ON inbound_events (id) WHERE status = 'pending'",
            "CREATE INDEX inbound_events_received ON inbound_events (received_at)",
            // Small durable values: sync tokens, socket cursors.
            """
            CREATE TABLE kv (
                key {text} PRIMARY KEY,
                value {text} NOT NULL,
                updated_at {int} NOT NULL
            )
            """,
        ]),
        Migration(name: "0003_dashboard", statements: [
            // Recent decisions, items over time, and each labeler's progress, for the dashboard.
            "CREATE INDEX approvals_decided ON approvals (decided_at, id) WHERE decided_at IS NOT NULL",
            "CREATE INDEX review_items_created ON review_items (created_at)",
            "CREATE INDEX review_items_completed ON review_items (completed_at) WHERE completed_at IS NOT NULL",
            "CREATE INDEX labels_labeler ON labels (labeler, dataset)",
        ]),
        Migration(name: "0004_matrix", statements: [
            // Matrix reactions the bot saw: a reaction is removed by redacting its event, and the
            // redaction names only that event, so `event_id → (card, sender, key)` is kept to read it.
            """
            CREATE TABLE matrix_reactions (
                event_id {text} PRIMARY KEY,
                room_id {text} NOT NULL,
                target_event_id {text} NOT NULL,
                sender {text} NOT NULL,
                reaction_key {text} NOT NULL,
                created_at {int} NOT NULL
            )
            """,
            "CREATE INDEX matrix_reactions_created ON matrix_reactions (created_at)",
        ]),
        Migration(name: "0005_ai", statements: [
            // Questions asked in chat, answered by the AI layer (one worker at a time per row: lease_until).
            """
            CREATE TABLE ai_questions (
                id {autoid},
                route {text},
                query {text} NOT NULL,
                origin {text},
                asker {text},
                status {text} NOT NULL,
                attempts {int} NOT NULL DEFAULT 0,
                lease_until {int},
                created_at {int} NOT NULL,
                answered_at {int},
                last_error {text}
            )
            """,
            "CREATE INDEX ai_questions_pending ON ai_questions (id) WHERE status = 'pending'",
            // Every AI answer: what was said, how sure, which past corrections were in the prompt, where it went.
            """
            CREATE TABLE ai_answers (
                id {autoid},
                question_id {int} REFERENCES ai_questions (id),
                route {text} NOT NULL,
                query {text} NOT NULL,
                answer {text},
                confidence {real},
                estimator {text} NOT NULL,
                decision {text} NOT NULL,
                reason {text},
                provider {text},
                model {text},
                prompt_version {int},
                examples {text} NOT NULL,
                details {text} NOT NULL,
                origin {text},
                review_item_id {int},
                escalation_id {int},
                feedback_id {int},
                followed_up {int} NOT NULL DEFAULT 0,
                created_at {int} NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX ai_answers_question ON ai_answers (question_id)",
            "CREATE INDEX ai_answers_review_item ON ai_answers (review_item_id) WHERE review_item_id IS NOT NULL",
            // Auto-sent answers whose 👍/👎 has not been looked at yet (a 👎 sends the answer to a person).
            "CREATE INDEX ai_answers_feedback_open ON ai_answers (id) WHERE feedback_id IS NOT NULL AND followed_up = 0",
            "CREATE INDEX ai_answers_route ON ai_answers (route, id)",
            // Calibration data: a routed answer a reviewer judged (one per review item), with its raw confidence.
            """
            CREATE TABLE ai_outcomes (
                review_item_id {int} PRIMARY KEY REFERENCES review_items (id),
                route {text} NOT NULL,
                confidence {real} NOT NULL,
                confidence_bin {int} NOT NULL,
                acceptable {int} NOT NULL,
                verdict {text} NOT NULL,
                estimator {text} NOT NULL,
                source {text} NOT NULL DEFAULT 'review',
                answer_id {int},
                judged_by {text} NOT NULL,
                judged_at {int} NOT NULL
            )
            """,
            "CREATE INDEX ai_outcomes_route ON ai_outcomes (route, source, estimator, confidence_bin)",
            // Thresholds set by `handoff calibrate --apply`; they take precedence over the policy file.
            """
            CREATE TABLE ai_route_thresholds (
                route {text} PRIMARY KEY,
                threshold {real} NOT NULL,
                target_error {real},
                estimated_error {real},
                outcomes {int},
                applied_by {text} NOT NULL,
                applied_at {int} NOT NULL
            )
            """,
            // System prompt versions per route: proposed (waiting for an approval), active (one per route), superseded, rejected.
            """
            CREATE TABLE ai_prompts (
                id {autoid},
                route {text} NOT NULL,
                version {int} NOT NULL,
                prompt {text} NOT NULL,
                status {text} NOT NULL,
                approval_id {int},
                reason {text},
                created_by {text} NOT NULL,
                created_at {int} NOT NULL,
                activated_at {int}
            )
            """,
            "CREATE UNIQUE INDEX ai_prompts_version ON ai_prompts (route, version)",
            "CREATE UNIQUE INDEX ai_prompts_active ON ai_prompts (route) WHERE status = 'active'",
            "CREATE INDEX ai_prompts_proposed ON ai_prompts (id) WHERE status = 'proposed'",
            "CREATE INDEX ai_prompts_approval ON ai_prompts (approval_id) WHERE approval_id IS NOT NULL",
        ]),
        Migration(name: "0006_inbound_retry", statements: [
            // When a pending inbound event may be tried again (ms since 1970; 0 = now): a transient
            // failure backs off here, persisted, so the router never re-reads rows that are waiting and
            // newer events are not starved behind them.
            "ALTER TABLE inbound_events ADD COLUMN next_attempt_at {int} NOT NULL DEFAULT 0",
            "CREATE INDEX inbound_events_due ON inbound_events (next_attempt_at, id) WHERE status = 'pending'",
        ]),
        Migration(name: "0007_reviewer_queue_stats", statements: [
            // A reviewer's time to decide within one queue (stats per queue and reviewer): count and
            // percentiles read only that reviewer's reviews of that queue, in decide_ms order.
            "CREATE INDEX reviews_queue_reviewer_decide ON reviews (queue, reviewer, decide_ms)",
        ]),
        Migration(name: "0008_outbox_due_by_kind", statements: [
            // Due rows of one kind (the webhook dispatcher's poll), without walking the other kinds' rows.
            "CREATE INDEX outbox_due_kind ON outbox (kind, next_attempt_at, id) WHERE status = 'pending'",
        ]),
        Migration(name: "0009_label_reservations", statements: [
            // Labels a task still needs (overlap − labels) and the groups that may label it, kept by every
            // write of the task, so "next task" can tell a task with room for this labeler from one whose
            // room is promised to others, or that they may not label, without decoding it. Rows written
            // before this migration have NULL groups until the store re-indexes them on open
            // (SQLWorkflowStore.reindexLabelTasks, through the partial index below): no JSON in SQL.
            "ALTER TABLE label_tasks ADD COLUMN slots {int} NOT NULL DEFAULT 0",
            "ALTER TABLE label_tasks ADD COLUMN labeler_groups {text}",
            "CREATE INDEX label_tasks_unindexed ON label_tasks (id) WHERE labeler_groups IS NULL",
            // A task handed to a labeler by "next task" is held for them for a while, so labelers asking at
            // once are handed different tasks instead of racing for the same one.
            """
            CREATE TABLE label_reservations (
                task_id {int} NOT NULL REFERENCES label_tasks (id),
                labeler {text} NOT NULL,
                expires_at {int} NOT NULL,
                PRIMARY KEY (task_id, labeler)
            )
            """,
            "CREATE INDEX label_reservations_labeler ON label_reservations (labeler, expires_at)",
            // Lapsed holds are deleted by the scheduler's prune.
            "CREATE INDEX label_reservations_expiry ON label_reservations (expires_at)",
        ]),
        Migration(name: "0010_claims", statements: [
            // Every claim, with how long the item had waited: time to claim counts each claim (those being
            // worked on and those whose lease lapsed too), not only the ones that led to a review.
            """
            CREATE TABLE claims (
                id {autoid},
                item_id {int} NOT NULL REFERENCES review_items (id),
                queue {text} NOT NULL,
                reviewer {text} NOT NULL,
                claimed_at {int} NOT NULL,
                waited_ms {int} NOT NULL
            )
            """,
            "CREATE INDEX claims_queue_waited ON claims (queue, waited_ms)",
            "CREATE INDEX claims_reviewer_waited ON claims (reviewer, waited_ms)",
            "CREATE INDEX claims_queue_reviewer_waited ON claims (queue, reviewer, waited_ms)",
            // The claims behind the reviews already made (the rest of the history was not kept).
            "INSERT INTO claims (item_id, queue, reviewer, claimed_at, waited_ms) SELECT item_id, queue, reviewer, claimed_at, waited_ms FROM reviews",
            // A review submitted at or after its item's SLA deadline (per-reviewer SLA breaches).
            "ALTER TABLE reviews ADD COLUMN late {int} NOT NULL DEFAULT 0",
        ]),
        Migration(name: "0011_cards_in_order", statements: [
            // Cards are posted to a destination in the order they were asked for: a post put off (a rate
            // limit, a retry) puts off the later posts to that destination with it.
            "CREATE INDEX outbox_pending_posts ON outbox (destination, id) WHERE status = 'pending' AND kind = 'post_card'",
        ]),
    ]
}
