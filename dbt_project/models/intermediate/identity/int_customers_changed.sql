{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['changed_at']}],
        pre_hook=["{{ new_batches_snapshot(read_by='int_identity_edges_collected') }}"],
        post_hook=["{{ new_batches_consumed() }}", "{{ customers_changed_logged() }}"],
    )
}}
-- The log of customers whose rows a customer-level model may have to compute again: one row per
-- customer and reason per night (macros/customer_scope.sql). A full build logs every customer.
-- An id may name a customer that no longer exists (a component merged away) or a component that
-- is no customer: a model's scope then deletes its stored rows, if any, and inserts none.
--
-- A customer's inputs changed when
-- - identity: a node was resolved again (every node of a component a change touched, so the
--   customers a node left and joined both), or a node that may have been its old component's key
--   moved or was forgotten (md5 of the node: the id of the customer it keyed);
-- - CRM records: the record has a row in an unread batch, or is a file customer and the export
--   was loaded again (a changed card moves no node: the identity side does not see it);
-- - orders and episodes: a row was derived again (its customer now) or deleted for that
--   (ops.customers_left: the customer it had);
-- - visits: a visit of one of the customer's ClientIDs was replaced (ops.visit_clients_replaced);
-- - survey answers: a response arrived in a load batch this model has not read (an edited answer
--   keeps the respondent's identity, so the identity side does not see it);
-- - the run date: the customer has a visit or a response between the run date this log last
--   used and tonight's (either way: a night re-run for an earlier day takes them out again).
-- depends_on: {{ ref('int_identity_edges_collected') }}, {{ ref('int_identity_nodes_resolved') }}
-- depends_on: {{ ref('int_orders_unified') }}, {{ ref('int_customer_interactions_resolved') }}
-- depends_on: {{ ref('int_web_visits_filtered') }}, {{ ref('stg_surveys__responses') }}
-- depends_on: {{ ref('stg_crm_files__customers') }}, {{ ref('stg_crm_files__orders') }}
-- depends_on: {{ ref('stg_crm_files__interactions') }}
{{ require_stored_columns(['customer_id', 'reason', 'changed_at']) }}
-- read by five branches: not materialized, so each joins the table itself (a materialized CTE of
-- 2.3 M nodes was sorted whole for one branch's merge join: 8.3 s → 4.4 s, EXPLAIN ANALYZE of the
-- medium new day, session 12)
with nodes as not materialized (select * from {{ ref('int_customer_nodes_resolved') }}),

{% if is_incremental() -%}
last_read as (
    select coalesce(max(read_until), '-infinity') as read_until, max(run_date) as run_date
    from {{ customer_scope_last_read() }} as stored
),

-- the run dates between the last night's and tonight's, either way
date_window as (
    select
        least(coalesce(last_read.run_date, '-infinity'), {{ run_date() }}) as after_date,
        greatest(coalesce(last_read.run_date, '-infinity'), {{ run_date() }}) as until_date
    from last_read
),

changes as (
    select md5(component_key) as customer_id, 'identity' as reason
    from {{ ref('int_identity_nodes_resolved') }}
    where resolved_at > (select read_until from last_read)
    union
    select md5(node_key), 'identity'
    from ({{ identity_nodes_moved_since('(select read_until from last_read)') }}) as moved
    union
    select customer_id, 'orders'
    from {{ ref('int_orders_unified') }}
    where unified_at > (select read_until from last_read)
    union
    select customer_id, 'episodes'
    from {{ ref('int_customer_interactions_resolved') }}
    where resolved_at > (select read_until from last_read)
    union
    -- the customers rows left (orders and episodes; the tables log them as they delete)
    select customer_id, 'left'
    from ops.customers_left
    where left_at > (select read_until from last_read)
    union
    -- CRM records in unread batches, and every file customer when the export was loaded again
    -- (a changed card moves no node)
    select nodes.customer_id, 'records'
    from ({{ identity_records_loaded() }}) as loaded
    inner join nodes on nodes.node_key = loaded.record_node
    union
    select customer_id, 'records'
    from nodes
    where node_type = 'crm_file_customer' and {{ file_export_reloaded() }}
    union
    select nodes.customer_id, 'visits'
    from ops.visit_clients_replaced as replaced
    inner join nodes on nodes.node_key = 'metrica_client_id:' || replaced.client_id
    where replaced.replaced_at > (select read_until from last_read)
    union
    select nodes.customer_id, 'survey_answers'
    from {{ ref('stg_surveys__responses') }} as responses
    inner join nodes on nodes.node_key = responses.response_key
    where responses._loaded_at >= {{ new_batches_since() }}
    union
    select nodes.customer_id, 'run_date'
    from {{ ref('int_web_visits_filtered') }} as visits
    inner join nodes on nodes.node_key = 'metrica_client_id:' || visits.client_id
    where visits.visit_date > (select after_date from date_window)
        and visits.visit_date <= (select until_date from date_window)
    union
    select nodes.customer_id, 'run_date'
    from {{ ref('stg_surveys__responses') }} as responses
    inner join nodes on nodes.node_key = responses.response_key
    where {{ local_date('responses.submitted_at') }} > (select after_date from date_window)
        and {{ local_date('responses.submitted_at') }} <= (select until_date from date_window)
),
{%- else -%}
changes as (
    select distinct customer_id, 'full build' as reason from nodes
),
{%- endif %}

final as (
    select customer_id, reason, {{ run_date() }} as run_date, now() as changed_at
    from changes
    where customer_id is not null
)

select * from final
