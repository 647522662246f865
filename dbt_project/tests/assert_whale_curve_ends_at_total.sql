-- The whale curve must end at 100% of total profit with 100% of customers.
select *
from {{ ref('whale_curve') }}
where customer_share = 1
    and cumulative_profit_share is not null
    and cumulative_profit_share <> 1
