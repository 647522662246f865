-- Orders from the CRM file export; status defaults to won (the export lists completed sales).
with source as (
    {{ raw_source('raw_crm_files', 'orders', [
        ('order_id', 'text'), ('customer_id', 'text'), ('ordered_at', 'timestamptz'),
        ('amount', 'numeric(18,2)'), ('status', 'text'), ('product', 'text'), ('quantity', 'numeric'),
        ('cost', 'numeric(18,2)'), ('manager', 'text'), ('row_number', 'bigint'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (order_id)
        order_id,
        'crm_file_order:' || order_id as order_key,
        nullif(trim(customer_id), '') as customer_id,
        ordered_at,
        coalesce(amount, 0) as amount,
        lower(trim(coalesce(nullif(status, ''), 'won'))) as raw_status,
        nullif(trim(product), '') as product,
        quantity,
        cost,
        nullif(trim(manager), '') as manager,
        _loaded_at
    from source
    where nullif(trim(order_id), '') is not null
    order by order_id, _loaded_at desc, row_number desc
)

select * from final
