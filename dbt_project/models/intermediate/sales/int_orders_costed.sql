-- Won orders with their cost of goods: the file's own `cost` when the export has it, else revenue
-- × (1 − gross margin) of the product, else of its category, else the `default` category margin.
with orders as (select * from {{ ref('int_orders_unified') }} where is_won),
catalog as (select * from {{ ref('product_catalog') }}),
category_margins as (select * from {{ ref('category_margins') }}),

final as (
    select
        orders.order_key,
        orders.customer_id,
        orders.order_date,
        orders.product,
        orders.revenue,
        coalesce(catalog.gross_margin, category_margins.gross_margin, default_margin.gross_margin) as gross_margin,
        round(
            coalesce(
                orders.file_cost,
                orders.revenue * (1 - coalesce(catalog.gross_margin, category_margins.gross_margin,
                                               default_margin.gross_margin))
            ),
            2
        ) as cost_of_goods,
        orders.file_cost is not null as cost_from_source
    from orders
    left join catalog on catalog.product = orders.product
    left join category_margins on category_margins.category = orders.category
    left join category_margins as default_margin on default_margin.category = 'default'
)

select * from final
