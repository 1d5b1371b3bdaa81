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
            "CREATE INDEX label_tasks_next ON label_tasks (dataset, id) WHERE status = 'open'",
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
                created_at {int} NOT NULL,
                PRIMARY KEY (source, key)
            )
            """,
            "CREATE INDEX inbox_created ON inbox (created_at)",
        ]),
    ]
}
