-- How well each manager keeps the business contact cards of their customers: the card should be
-- filled after each contact and is a condition for closing a deal.
with episodes as (select * from {{ ref('customer_episodes') }}),
orders as (select * from {{ ref('int_orders_unified') }}),

won_with_card as (
    select
        orders.manager_key,
        count(*) filter (where orders.is_won) as won_deals,
        count(*) filter (where orders.is_won and episodes.card_completeness < 1) as won_deals_incomplete_card
    from orders
    inner join episodes on episodes.customer_id = orders.customer_id
    where orders.manager_key is not null
    group by orders.manager_key
),

by_manager as (
    select
        manager_key,
        max(manager_name) as manager_name,
        count(*) as customers,
        round(avg(card_completeness), 4) as avg_card_completeness,
        count(*) filter (where card_completeness = 1) as complete_cards
    from episodes
    where manager_key is not null
    group by manager_key
),

final as (
    select
        by_manager.manager_key,
        by_manager.manager_name,
        by_manager.customers,
        by_manager.avg_card_completeness,
        by_manager.complete_cards,
        round(cast(by_manager.complete_cards as numeric) / by_manager.customers, 4) as share_complete_cards,
        coalesce(won_with_card.won_deals, 0) as won_deals,
        coalesce(won_with_card.won_deals_incomplete_card, 0) as won_deals_incomplete_card
    from by_manager
    left join won_with_card on won_with_card.manager_key = by_manager.manager_key
)

select * from final
