// Sound: down removes exactly what up added.
module.exports = class AddUserTimezone1700000000002 {
  async up(queryRunner) {
    await queryRunner.query("ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'");
  }

  async down(queryRunner) {
    await queryRunner.query("ALTER TABLE users DROP COLUMN timezone");
  }
};
