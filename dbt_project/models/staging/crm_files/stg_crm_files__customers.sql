-- Customers from the CRM file export.
with source as (
    {{ raw_source('raw_crm_files', 'customers', [
        ('customer_id', 'text'), ('name', 'text'), ('email', 'text'), ('phone', 'text'), ('city', 'text'),
        ('type', 'text'), ('row_number', 'bigint'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (customer_id)
        customer_id,
        'crm_file_customer:' || customer_id as customer_key,
        nullif(trim(name), '') as customer_name,
        {{ normalise_email('email') }} as email,
        {{ normalise_phone('phone') }} as phone,
        nullif(trim(city), '') as city,
        lower(nullif(trim(type), '')) as customer_type,
        _loaded_at
    from source
    where nullif(trim(customer_id), '') is not null
    order by customer_id, _loaded_at desc, row_number desc
)

select * from final
