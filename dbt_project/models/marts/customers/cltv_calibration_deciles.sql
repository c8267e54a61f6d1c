select * from {{ source('analytics', 'cltv_calibration_deciles') }}
