"""The model the cloud, the agent and the simulator share: time, the Earth, a multicopter.

A clock (real, scaled or manual), geometry on a spherical Earth, the airframe's parameters, its
flight phases and the energy estimate of a delivery trip. Imports nothing of ours but
`contracts`, so `cloud/` can plan with it without importing the simulator.
"""
