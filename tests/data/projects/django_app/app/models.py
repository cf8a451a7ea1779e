"""Bookings."""

from django.db import models


class Room(models.Model):
    """A bookable room."""

    name = models.CharField(max_length=100, unique=True)
    capacity = models.PositiveIntegerField(default=4)


class Booking(models.Model):
    """A room booked for a time range."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bookings")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
