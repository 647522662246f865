{#- int_orders_unified, pre-hooks: the orders whose stored row may be wrong, into
    pg_temp.orders_scope, and their stored rows deleted (the model then inserts what they are now;
    an order it no longer yields stays deleted). Rebuilding all 1.36 M orders was the slowest model
    of a new day at medium scale (27 s, bench of session 7). An order's row depends on

    - the deal itself: new or changed in a load batch this model has not read yet (the amoCRM lead's
      record carries its custom fields too; a deletion arrives as a flagged row in a batch);
    - the file export: a snapshot loaded whole, so no batch tells which of its orders changed. On
      a night it was loaded again (file_export_reloaded()), its orders whose columns differ from
      the stored row's, whose customer differs from the one their file customer's node resolves
      to, that are not stored, or that are stored but gone from the file (deriving all 114 k file
      orders of the medium bench again took 10 s a night, comparing them 1 s);
    - its customer: the identity node of the deal (or of the file order's customer) moved to
      another component or was forgotten (as in macros/interactions_scope.sql);
    - the run date: orders whose date may lie after the newest stored order date up to the run date
      came due (any deal with a timestamp from that day on: a superset, as a deal's date is one of
      its timestamps; any file order dated from that day on, reload or not); stored ones after the
      run date leave (a night re-run for an earlier day);
    - the lookups: users, loss reasons, pipeline statuses, Bitrix24 stages and the seeds the model
      reads. They are small and change rarely, so their content hash is compared with the one the
      stored rows were built from, and any change rebuilds every order.
-#}
{% macro orders_unified_lookups() -%}
    {{ return([ref('stg_amocrm__users'), ref('stg_amocrm__loss_reasons'), ref('stg_amocrm__pipeline_statuses'),
               ref('stg_bitrix24__deal_stages'), ref('order_status_map'), ref('product_catalog'),
               ref('crm_field_map')]) }}
{%- endmacro %}

{% macro orders_unified_scope() -%}
    create table if not exists ops.orders_unified_inputs (lookups_hash text not null);
    drop table if exists pg_temp.orders_inputs;
    create temp table orders_inputs on commit drop as
    select {{ lookups_hash(orders_unified_lookups()) }} as lookups_hash;
    drop table if exists pg_temp.orders_scope;
    {%- if is_incremental() %}
    {%- set tz = var('business_timezone') %}
    create temp table orders_scope on commit drop as
    with stored_until as (
        select
            coalesce(max(unified_at), '-infinity') as unified_at,
            cast(coalesce(max(order_date), '-infinity') as timestamp) at time zone '{{ tz }}' as order_day_start
        from {{ this }}
    ),

    lookups_changed as (
        select not exists (
            select from ops.orders_unified_inputs as used
            inner join pg_temp.orders_inputs as now_used on now_used.lookups_hash = used.lookups_hash
        ) as changed
    ),

    moved_nodes as (
        {{ identity_nodes_moved_since('(select unified_at from stored_until)') }}
    )

    select lead_key as order_key
    from {{ ref('stg_amocrm__leads') }}
    where _loaded_at >= {{ new_batches_since() }}
        or greatest(created_at, closed_at, updated_at) >= (select order_day_start from stored_until)
        or (select changed from lookups_changed)
    union
    select deal_key
    from {{ ref('stg_bitrix24__deals') }}
    where _loaded_at >= {{ new_batches_since() }}
        or greatest(created_at, close_date, updated_at) >= (select order_day_start from stored_until)
        or (select changed from lookups_changed)
    union
    -- file orders the run date may have brought in (the export lists orders dated after it)
    select order_key
    from {{ ref('stg_crm_files__orders') }}
    where ordered_at >= (select order_day_start from stored_until)
    union
    select file_orders.order_key
    from {{ ref('stg_crm_files__orders') }} as file_orders
    left join {{ this }} as stored on stored.order_key = file_orders.order_key
    left join {{ ref('int_customer_nodes_resolved') }} as nodes
        on nodes.node_key = 'crm_file_customer:' || file_orders.customer_id
    -- the stored columns the file's columns land in (file_orders_typed in int_orders_unified):
    -- a file column the model starts to read must be compared here too
    where {{ file_export_reloaded() }}
        and (
            stored.order_key is null
            or (stored.created_at, stored.amount, stored.stage_name, stored.title, stored.quantity,
                stored.file_cost, stored.manager_name, stored.customer_id)
            is distinct from (file_orders.ordered_at, file_orders.amount, file_orders.raw_status,
                file_orders.product, file_orders.quantity, file_orders.cost, file_orders.manager,
                nodes.customer_id)
        )
    union
    select stored.order_key
    from {{ this }} as stored
    where stored.source = 'crm_file'
        and {{ file_export_reloaded() }}
        and not exists (
            select from {{ ref('stg_crm_files__orders') }} as file_orders
            where file_orders.order_key = stored.order_key
        )
    union
    select order_key
    from {{ this }}
    where order_date > {{ run_date() }} or (select changed from lookups_changed)
    union
    select node_key from moved_nodes where node_key like 'amocrm\_lead:%' or node_key like 'bitrix24\_deal:%'
    union
    select file_orders.order_key
    from {{ ref('stg_crm_files__orders') }} as file_orders
    inner join moved_nodes on moved_nodes.node_key = 'crm_file_customer:' || file_orders.customer_id;
    {{ delete_stored_in_scope('orders_scope', 'order_key', log_customers=true) }}
    {%- endif %}
{%- endmacro %}

{#- post-hook: the lookups the stored rows were now built from -#}
{% macro orders_unified_inputs_used() -%}
    delete from ops.orders_unified_inputs;
    insert into ops.orders_unified_inputs (lookups_hash) select lookups_hash from pg_temp.orders_inputs
{%- endmacro %}
